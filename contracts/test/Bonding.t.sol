// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {Manager} from "../src/Manager.sol";
import {BondingManager} from "../src/BondingManager.sol";
import {RoundsManager} from "../src/RoundsManager.sol";

contract BondingTest is Fixture {
    function test_registerAndPoolOrder() public {
        register(t1, 100 ether, 100_000, 500_000, 3);
        register(t2, 300 ether, 100_000, 500_000, 3);
        register(t3, 200 ether, 100_000, 500_000, 3);
        assertEq(bonding.getTranscoderPoolSize(), 3, "size");
        assertEq(bonding.getFirstTranscoderInPool(), t2, "largest first");
        assertEq(bonding.getNextTranscoderInPool(t2), t3, "then t3");
        assertEq(bonding.getNextTranscoderInPool(t3), t1, "then t1");
        assertEq(bonding.getNextTranscoderInPool(t1), address(0), "end");
        // delegation reorders the pool
        bondTo(d1, 250 ether, t1);
        assertEq(bonding.getFirstTranscoderInPool(), t1, "t1 now largest");
        assertEq(bonding.transcoderTotalStake(t1), 350 ether, "t1 stake");
        (uint256 rc, uint256 fs, uint256 price,, uint256 delegated) = bonding.getTranscoder(t1);
        assertEq(rc, 100_000, "rewardCut");
        assertEq(fs, 500_000, "feeShare");
        assertEq(price, 3, "price");
        assertEq(delegated, 350 ether, "delegated");
        assertTrue(bonding.isRegisteredTranscoder(t1), "registered");
        assertTrue(!bonding.isRegisteredTranscoder(d1), "delegator is not a transcoder");
    }

    function test_registrationChecks() public {
        vm.prank(t1);
        vm.expectRevert(BondingManager.NotSelfBonded.selector);
        bonding.transcoder(0, 0, 1);
        bondTo(t1, 1 ether, t2); // bonded, but to someone else
        vm.prank(t1);
        vm.expectRevert(BondingManager.NotSelfBonded.selector);
        bonding.transcoder(0, 0, 1);
        bondTo(t3, 1 ether, t3);
        vm.prank(t3);
        vm.expectRevert(BondingManager.InvalidParameter.selector);
        bonding.transcoder(1_000_001, 0, 1);
        vm.prank(t3);
        vm.expectRevert(BondingManager.InvalidParameter.selector);
        bonding.transcoder(0, 1_000_001, 1);
        vm.prank(t3);
        vm.expectRevert(BondingManager.InvalidParameter.selector);
        bonding.transcoder(0, 0, uint256(type(uint128).max) + 1);
    }

    function test_boundedPoolEvictsSmallest() public {
        BondingManager small = new BondingManager(controller, 2, 2, 1);
        controller.setContract(keccak256("BondingManager"), address(small));
        bonding = small;
        register(t1, 100 ether, 0, 0, 1);
        register(t2, 200 ether, 0, 0, 1);
        bondTo(t3, 50 ether, t3);
        vm.prank(t3);
        vm.expectRevert(abi.encodeWithSelector(BondingManager.PoolFull.selector, 100 ether));
        bonding.transcoder(0, 0, 1);
        bondTo(t3, 100 ether, t3); // 150 now
        vm.prank(t3);
        bonding.transcoder(0, 0, 1);
        assertTrue(!bonding.isRegisteredTranscoder(t1), "t1 evicted");
        assertEq(bonding.getFirstTranscoderInPool(), t2, "t2 first");
        assertEq(bonding.getNextTranscoderInPool(t2), t3, "t3 second");
    }

    function test_activeSetAtRoundInit() public {
        register(t1, 100 ether, 0, 0, 1);
        register(t2, 300 ether, 0, 0, 1);
        uint256 r = rounds.currentRound();
        assertTrue(!bonding.isActiveTranscoder(t1, r), "not active before the next round init");
        nextRound();
        r = rounds.currentRound();
        assertTrue(bonding.isActiveTranscoder(t1, r) && bonding.isActiveTranscoder(t2, r), "both active");
        assertEq(bonding.getTotalActiveStake(r), 400 ether, "total active stake");
        address[] memory set = bonding.getActiveTranscoders(r);
        assertEq(set.length, 2, "set size");
        assertEq(set[0], t2, "ordered by stake");
        assertEq(bonding.activeTranscoderPrice(t1, r), 1, "price snapshot");
        (,,,, uint256 totalStake, uint256 claimable) = bonding.getEarningsPool(t2, r);
        assertEq(totalStake, 300 ether, "pool stake");
        assertEq(claimable, 300 ether, "claimable");
    }

    function test_onlyRoundsManagerSetsActiveSet() public {
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        bonding.setActiveTranscoders();
    }

    function test_bondRequiresInitializedRound() public {
        fund(d1, 1 ether);
        vm.startPrank(d1);
        token.approve(address(bonding), 1 ether);
        vm.expectRevert(BondingManager.ZeroAddress.selector);
        bonding.bond(1 ether, address(0));
        vm.roll(block.number + cfg.roundLength);
        vm.expectRevert(BondingManager.RoundNotInitialized.selector);
        bonding.bond(1 ether, t1);
        vm.stopPrank();
    }

    function test_delegatorStatusAndRedelegation() public {
        register(t1, 100 ether, 0, 0, 1);
        register(t2, 100 ether, 0, 0, 1);
        bondTo(d1, 40 ether, t1);
        assertEq(uint256(bonding.delegatorStatus(d1)), uint256(BondingManager.DelegatorStatus.Pending), "pending");
        nextRound();
        assertEq(uint256(bonding.delegatorStatus(d1)), uint256(BondingManager.DelegatorStatus.Bonded), "bonded");
        vm.prank(d1);
        bonding.bond(0, t2); // move the whole bond
        assertEq(bonding.transcoderTotalStake(t1), 100 ether, "left t1");
        assertEq(bonding.transcoderTotalStake(t2), 140 ether, "joined t2");
        (uint256 bonded,, address delegate, uint256 startRound,,,) = bonding.getDelegator(d1);
        assertEq(bonded, 40 ether, "bonded amount");
        assertEq(delegate, t2, "delegate");
        assertEq(startRound, rounds.currentRound() + 1, "restarts next round");
        // a registered transcoder cannot delegate its own stake away
        vm.prank(t1);
        vm.expectRevert(BondingManager.TranscoderCannotRedelegate.selector);
        bonding.bond(0, t2);
        assertEq(bonding.getTotalBonded(), 240 ether, "total bonded");
    }

    function test_unbondAndWithdrawBeforeAndAfterPeriod() public {
        register(t1, 100 ether, 0, 0, 1);
        bondTo(d1, 40 ether, t1);
        vm.prank(d1);
        vm.expectRevert(abi.encodeWithSelector(BondingManager.InsufficientBond.selector, 40 ether, 41 ether));
        bonding.unbond(41 ether);
        vm.prank(d1);
        vm.expectRevert(abi.encodeWithSelector(BondingManager.InsufficientBond.selector, 40 ether, 0));
        bonding.unbond(0);
        vm.prank(d1);
        vm.expectRevert(BondingManager.NothingToWithdraw.selector);
        bonding.withdrawStake();
        uint256 r = rounds.currentRound();
        vm.prank(d1);
        bonding.unbond(15 ether);
        assertEq(bonding.transcoderTotalStake(t1), 125 ether, "stake left the transcoder");
        (uint256 bonded,,,,, uint256 unbonding, uint256 withdrawRound) = bonding.getDelegator(d1);
        assertEq(bonded, 25 ether, "still bonded");
        assertEq(unbonding, 15 ether, "unbonding");
        assertEq(withdrawRound, r + cfg.unbondingPeriod, "withdraw round");
        // before the period: refused, in this round and the next one
        vm.prank(d1);
        vm.expectRevert(abi.encodeWithSelector(BondingManager.UnbondingPeriodNotOver.selector, r + 2));
        bonding.withdrawStake();
        nextRound();
        vm.prank(d1);
        vm.expectRevert(abi.encodeWithSelector(BondingManager.UnbondingPeriodNotOver.selector, r + 2));
        bonding.withdrawStake();
        // after the period: paid
        nextRound();
        vm.prank(d1);
        bonding.withdrawStake();
        assertEq(token.balanceOf(d1), 15 ether, "withdrawn");
        vm.prank(d1);
        vm.expectRevert(BondingManager.NothingToWithdraw.selector);
        bonding.withdrawStake();
    }

    function test_transcoderUnbondingEverythingResigns() public {
        register(t1, 100 ether, 0, 0, 1);
        vm.prank(t1);
        bonding.unbond(100 ether);
        assertTrue(!bonding.isRegisteredTranscoder(t1), "resigned");
        assertEq(bonding.getTranscoderPoolSize(), 0, "empty pool");
        assertEq(uint256(bonding.delegatorStatus(t1)), uint256(BondingManager.DelegatorStatus.Unbonded), "unbonded");
    }

    function test_rewardOncePerRoundAndSharing() public {
        register(t1, 100 ether, 250_000, 500_000, 1); // keeps 25 % of rewards
        bondTo(d1, 300 ether, t1);
        nextRound();
        uint256 r = rounds.currentRound();
        vm.prank(t1);
        bonding.reward();
        uint256 minted = minter.currentMintedTokens();
        assertEq(minted, minter.currentMintableTokens(), "sole active transcoder mints the whole round");
        assertTrue(minted > 0, "something minted");
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(BondingManager.RewardAlreadyCalled.selector, r));
        bonding.reward();
        vm.prank(d1);
        vm.expectRevert(BondingManager.NotActiveTranscoder.selector);
        bonding.reward();
        (uint256 rp,, uint256 trp,,,) = bonding.getEarningsPool(t1, r);
        assertEq(trp, minted / 4, "transcoder cut");
        assertEq(rp, minted - minted / 4, "delegators' pool");
        // the round is claimable once it is over
        vm.prank(d1);
        vm.expectRevert(abi.encodeWithSelector(BondingManager.InvalidEndRound.selector, r));
        bonding.claimEarnings(r);
        nextRound();
        (uint256 pendingD1,) = bonding.pendingEarnings(d1, r);
        vm.prank(d1);
        bonding.claimEarnings(r);
        (uint256 bondedD1,,,,,,) = bonding.getDelegator(d1);
        assertEq(bondedD1, pendingD1, "pendingEarnings predicted the claim");
        assertEq(bondedD1, 300 ether + rp * 3 / 4, "d1 gets 3/4 of the delegators' pool");
        vm.prank(t1);
        bonding.claimEarnings(r);
        (uint256 bondedT1,,,,,,) = bonding.getDelegator(t1);
        assertEq(bondedT1, 100 ether + rp / 4 + trp, "t1 gets its stake share and its cut");
        assertEq(bonding.transcoderTotalStake(t1), 400 ether + minted, "rewards are stake");
        assertLe(bondedT1 + bondedD1, 400 ether + minted, "no more than minted");
        assertTrue(400 ether + minted - bondedT1 - bondedD1 <= 2, "rounding dust only");
    }

    function test_rewardRequiresInitializedRound() public {
        register(t1, 100 ether, 0, 0, 1);
        nextRound();
        vm.roll(block.number + cfg.roundLength);
        vm.prank(t1);
        vm.expectRevert(BondingManager.RoundNotInitialized.selector);
        bonding.reward();
    }

    function test_partialUnbondKeepsCurrentRoundShare() public {
        register(t1, 100 ether, 0, 1_000_000, 1);
        bondTo(d1, 100 ether, t1);
        nextRound();
        uint256 r = rounds.currentRound();
        vm.prank(d1);
        bonding.unbond(50 ether); // after the round's snapshot: d1 still earns on 100 in round r
        vm.prank(t1);
        bonding.reward();
        (uint256 rp,,,,,) = bonding.getEarningsPool(t1, r);
        nextRound();
        vm.prank(d1);
        bonding.claimEarnings(r);
        (uint256 bonded,,,,,,) = bonding.getDelegator(d1);
        assertEq(bonded, 50 ether + rp / 2, "half of the pool for half the snapshot stake");
    }

    function test_electionNoEligibleTranscoder() public {
        uint256 r = rounds.currentRound();
        assertEq(elect(100, bytes32(uint256(1)), r), address(0), "empty set");
        register(t1, 100 ether, 0, 0, 50);
        nextRound();
        r = rounds.currentRound();
        assertEq(elect(49, bytes32(uint256(1)), r), address(0), "all too expensive");
        assertEq(elect(50, bytes32(uint256(1)), r), t1, "price == max is eligible");
    }

    function test_withdrawFeesNothing() public {
        register(t1, 100 ether, 0, 0, 1);
        vm.prank(t1);
        vm.expectRevert(BondingManager.NothingToWithdraw.selector);
        bonding.withdrawFees();
    }

    function test_onlyJobsManagerSlashesAndCreditsFees() public {
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        bonding.slashTranscoder(t1, finder, 1, 1);
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        bonding.updateTranscoderWithFees(t1, 1, 0);
    }

    function test_badParameters() public {
        vm.expectRevert(BondingManager.InvalidParameter.selector);
        new BondingManager(controller, 1, 2, 3);
        vm.expectRevert(BondingManager.InvalidParameter.selector);
        new BondingManager(controller, 1, 0, 0);
    }

    /// @notice election against a reference computation: the winner is eligible and is the one the
    /// cumulative-stake rule picks, for random stakes, prices and seeds.
    function testFuzz_election(uint64[5] memory stakes, uint8[5] memory prices, uint8 maxPrice, bytes32 seed) public {
        address[5] memory ts = [address(0xA1), address(0xA2), address(0xA3), address(0xA4), address(0xA5)];
        for (uint256 i = 0; i < 5; i++) {
            if (stakes[i] == 0) continue;
            register(ts[i], stakes[i], 0, 0, prices[i]);
        }
        nextRound();
        uint256 r = rounds.currentRound();
        address[] memory set = bonding.getActiveTranscoders(r);
        uint256 total;
        for (uint256 i = 0; i < set.length; i++) {
            if (bonding.activeTranscoderPrice(set[i], r) <= maxPrice) total += bonding.transcoderTotalStake(set[i]);
        }
        address got = elect(maxPrice, seed, r);
        if (total == 0) {
            assertEq(got, address(0), "none eligible");
            return;
        }
        uint256 pick = uint256(keccak256(abi.encodePacked(seed))) % total;
        address want;
        uint256 cum;
        for (uint256 i = 0; i < set.length; i++) {
            if (bonding.activeTranscoderPrice(set[i], r) > maxPrice) continue;
            cum += bonding.transcoderTotalStake(set[i]);
            if (pick < cum) {
                want = set[i];
                break;
            }
        }
        assertEq(got, want, "reference pick");
        (, uint256 price) = bonding.electActiveTranscoder(maxPrice, seed, r);
        assertEq(price, bonding.activeTranscoderPrice(got, r), "price of the elected in that round");
        assertTrue(bonding.activeTranscoderPrice(got, r) <= maxPrice, "winner eligible");
    }

    /// @notice election frequencies follow stake: 3:1 stakes over 400 seeds land near 300:100.
    function test_electionIsStakeWeighted() public {
        register(t1, 300 ether, 0, 0, 1);
        register(t2, 100 ether, 0, 0, 1);
        nextRound();
        uint256 r = rounds.currentRound();
        uint256 wins1;
        for (uint256 i = 0; i < 400; i++) {
            if (elect(1, keccak256(abi.encode(i)), r) == t1) wins1++;
        }
        assertTrue(wins1 > 260 && wins1 < 340, string.concat("t1 wins ", _u(wins1), " of 400"));
    }
}
