// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {Controller} from "../src/Controller.sol";
import {Manager} from "../src/Manager.sol";
import {Token} from "../src/Token.sol";
import {RoundsManager} from "../src/RoundsManager.sol";
import {Minter} from "../src/Minter.sol";
import {BondingManager} from "../src/BondingManager.sol";

contract ControllerTest is Fixture {
    function test_registryWiresEveryContract() public view {
        assertEq(controller.getContract(keccak256("BondingManager")), address(bonding), "bonding");
        assertEq(controller.getContract(keccak256("JobsManager")), address(jobs), "jobs");
        assertEq(controller.getContract(keccak256("Verifier")), address(verifier), "verifier");
        assertEq(controller.getContract(keccak256("ServiceRegistry")), address(serviceRegistry), "service registry");
        assertEq(controller.getContract(keccak256("Nope")), address(0), "unknown name");
        assertEq(controller.owner(), address(this), "owner");
    }

    function test_onlyOwnerSetsContracts() public {
        vm.prank(d1);
        vm.expectRevert(Controller.NotOwner.selector);
        controller.setContract(keccak256("Token"), d1);
        vm.expectRevert(Controller.ZeroAddress.selector);
        controller.setContract(keccak256("Token"), address(0));
    }

    function test_transferOwnership() public {
        controller.transferOwnership(d1);
        assertEq(controller.owner(), d1, "new owner");
        vm.expectRevert(Controller.NotOwner.selector);
        controller.pause();
        vm.expectRevert(Controller.ZeroAddress.selector);
        vm.prank(d1);
        controller.transferOwnership(address(0));
    }

    function test_pauseStopsManagers() public {
        controller.pause();
        assertTrue(controller.paused(), "paused");
        vm.expectRevert(Controller.AlreadyPaused.selector);
        controller.pause();
        fund(d1, 10 ether);
        vm.startPrank(d1);
        token.approve(address(bonding), 10 ether);
        vm.expectRevert(Manager.SystemPaused.selector);
        bonding.bond(10 ether, d1);
        vm.expectRevert(Manager.SystemPaused.selector);
        jobs.job(STREAM, OPTIONS, 1, block.number + 100);
        vm.stopPrank();
        controller.unpause();
        vm.expectRevert(Controller.NotPaused.selector);
        controller.unpause();
        vm.prank(d1);
        bonding.bond(10 ether, d1);
    }
}

contract TokenTest is Fixture {
    function test_mintOnlyByMinter() public {
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        token.mint(d1, 1);
        vm.prank(address(minter));
        token.mint(d1, 5);
        assertEq(token.balanceOf(d1), 5, "minted");
    }

    function test_faucetOnDevChainOnly() public {
        vm.prank(d1);
        token.faucet();
        assertEq(token.balanceOf(d1), cfg.faucetAmount, "faucet amount");
        vm.chainId(1);
        vm.prank(d1);
        vm.expectRevert(Token.FaucetDisabled.selector);
        token.faucet();
    }

    function test_faucetWait() public {
        Token slow = new Token(controller, address(this), 0, 1 ether, 10);
        vm.prank(d1);
        slow.faucet();
        vm.prank(d1);
        vm.expectRevert(abi.encodeWithSelector(Token.FaucetTooSoon.selector, block.number + 10));
        slow.faucet();
        vm.roll(block.number + 10);
        vm.prank(d1);
        slow.faucet();
        assertEq(slow.balanceOf(d1), 2 ether, "two drips");
    }

    function test_transfersAndAllowances() public {
        uint256 supply = token.totalSupply();
        assertTrue(token.transfer(d1, 100), "transfer");
        vm.prank(d1);
        token.approve(t1, 60);
        vm.prank(t1);
        assertTrue(token.transferFrom(d1, t2, 60), "transferFrom");
        assertEq(token.balanceOf(t2), 60, "moved");
        assertEq(token.allowance(d1, t1), 0, "allowance spent");
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(Token.InsufficientAllowance.selector, 0, 1));
        bool reverted = token.transferFrom(d1, t2, 1);
        vm.prank(d1);
        vm.expectRevert(abi.encodeWithSelector(Token.InsufficientBalance.selector, 40, 41));
        reverted = token.transfer(t2, 41);
        assertTrue(!reverted, "expected reverts return nothing");
        vm.prank(d1);
        token.burn(40);
        assertEq(token.totalSupply(), supply - 40, "burned");
        vm.prank(d1);
        vm.expectRevert(abi.encodeWithSelector(Token.InsufficientBalance.selector, 0, 1));
        token.burn(1);
    }
}

contract RoundsTest is Fixture {
    function test_initializeOncePerRound() public {
        uint256 r = rounds.currentRound();
        assertTrue(rounds.currentRoundInitialized(), "initialized in setUp");
        vm.expectRevert(abi.encodeWithSelector(RoundsManager.RoundAlreadyInitialized.selector, r));
        rounds.initializeRound();
        vm.roll(block.number + cfg.roundLength);
        assertTrue(!rounds.currentRoundInitialized(), "new round not initialized");
        vm.prank(d1); // anyone
        rounds.initializeRound();
        assertEq(rounds.lastInitializedRound(), r + 1, "next round");
        assertEq(rounds.currentRoundStartBlock(), (r + 1) * cfg.roundLength, "start block");
    }

    function test_lockPeriod() public {
        uint256 start = rounds.currentRoundStartBlock();
        // 20-block rounds, 10 % lock: the last 2 blocks are locked
        vm.roll(start + 17);
        assertTrue(!rounds.currentRoundLocked(), "block 17 open");
        vm.roll(start + 18);
        assertTrue(rounds.currentRoundLocked(), "block 18 locked");
    }

    function test_registrationRefusedWhileLocked() public {
        vm.roll(rounds.currentRoundStartBlock() + 19);
        bondTo(t1, 100 ether, t1);
        vm.prank(t1);
        vm.expectRevert(BondingManager.RoundLocked.selector);
        bonding.transcoder(0, 0, 1);
    }

    function test_blockHashWindow() public {
        vm.roll(1000);
        rounds.blockHash(999);
        rounds.blockHash(744);
        vm.expectRevert(abi.encodeWithSelector(RoundsManager.BlockHashUnavailable.selector, 743));
        rounds.blockHash(743);
        vm.expectRevert(abi.encodeWithSelector(RoundsManager.BlockHashUnavailable.selector, 1000));
        rounds.blockHash(1000);
        assertEq(rounds.blockNum(), 1000, "blockNum");
    }

    function test_badParameters() public {
        vm.expectRevert(RoundsManager.InvalidParameter.selector);
        new RoundsManager(controller, 0, 0);
        vm.expectRevert(RoundsManager.InvalidParameter.selector);
        new RoundsManager(controller, 10, 1_000_001);
    }
}

contract MinterTest is Fixture {
    function test_inflationMovesTowardTarget() public {
        // nothing bonded: below the 50 % target, inflation goes up by inflationChange each round
        uint256 before = minter.inflation();
        nextRound();
        assertEq(minter.inflation(), before + cfg.inflationChange, "up");
        assertEq(minter.currentMintableTokens(), token.totalSupply() * minter.inflation() / 1e6, "mintable");
        // bond 60 % of the supply: above target, inflation goes down
        register(t1, token.totalSupply() * 6 / 10, 0, 0, 1);
        assertEq(minter.currentBondingRate(), 600_000, "bonding rate");
        uint256 mid = minter.inflation();
        nextRound();
        assertEq(minter.inflation(), mid - cfg.inflationChange, "down");
    }

    function test_inflationFloorsAtZero() public {
        Minter m = new Minter(controller, 2, 3, 0);
        controller.setContract(keccak256("Minter"), address(m));
        register(t1, 1000 ether, 0, 0, 1);
        nextRound();
        assertEq(m.inflation(), 0, "floored");
        assertEq(m.currentMintableTokens(), 0, "nothing to mint");
    }

    function test_onlyWiredCallers() public {
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        minter.createReward(1, 1);
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        minter.setCurrentRewardTokens();
        vm.deal(address(this), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        minter.depositETH{value: 1}();
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        minter.trustedWithdrawETH(payable(d1), 0);
    }

    function test_createRewardBounds() public {
        vm.startPrank(address(bonding));
        vm.expectRevert(Minter.InvalidParameter.selector);
        minter.createReward(2, 1);
        vm.expectRevert(Minter.InvalidParameter.selector);
        minter.createReward(1, 0);
        uint256 all = minter.createReward(1, 1);
        assertEq(all, minter.currentMintableTokens(), "whole round");
        vm.expectRevert(abi.encodeWithSelector(Minter.MintableExceeded.selector, 0, all));
        minter.createReward(1, 1);
        vm.stopPrank();
    }
}
