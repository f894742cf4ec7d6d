// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "../src/Controller.sol";
import {Token} from "../src/Token.sol";
import {RoundsManager} from "../src/RoundsManager.sol";
import {BondingManager} from "../src/BondingManager.sol";
import {Minter} from "../src/Minter.sol";
import {JobsManager} from "../src/JobsManager.sol";
import {Verifier} from "../src/Verifier.sol";
import {ServiceRegistry} from "../src/ServiceRegistry.sol";

/// @notice Deployment of the whole set, shared by the deploy script and the tests.
library DeployLib {
    struct Config {
        uint256 roundLength; // blocks
        uint256 roundLockAmount; // millionths of a round
        uint256 unbondingPeriod; // rounds
        uint256 numTranscoders;
        uint256 numActiveTranscoders;
        uint256 inflation; // millionths of the supply per round
        uint256 inflationChange;
        uint256 targetBondingRate;
        uint256 genesisSupply;
        address genesisHolder;
        uint256 faucetAmount;
        uint256 faucetWait;
        address solver;
        JobsManager.Params jobs;
    }

    struct Deployment {
        Controller controller;
        Token token;
        RoundsManager rounds;
        BondingManager bonding;
        Minter minter;
        JobsManager jobs;
        Verifier verifier;
        ServiceRegistry serviceRegistry;
    }

    /// @notice dev defaults: 2018 economics, but loops that run in seconds on a local chain.
    function devConfig(address genesisHolder, address solver) internal pure returns (Config memory c) {
        c.roundLength = 20;
        c.roundLockAmount = 100_000;
        c.unbondingPeriod = 2;
        c.numTranscoders = 20;
        c.numActiveTranscoders = 10;
        c.inflation = 137;
        c.inflationChange = 3;
        c.targetBondingRate = 500_000;
        c.genesisSupply = 10_000_000 ether;
        c.genesisHolder = genesisHolder;
        c.faucetAmount = 1000 ether;
        c.faucetWait = 0;
        c.solver = solver;
        c.jobs = JobsManager.Params({
            verificationRate: 2,
            verificationPeriod: 30,
            verificationSlashingPeriod: 30,
            failedVerificationSlashAmount: 1,
            missedVerificationSlashAmount: 5000,
            doubleClaimSegmentSlashAmount: 30000,
            finderFee: 50000
        });
    }

    /// @notice deploys and registers everything; the caller (msg.sender of the creating frame, i.e. the
    /// broadcasting account in a script) owns the Controller.
    function deploy(Config memory c) internal returns (Deployment memory d) {
        d.controller = new Controller();
        d.token = new Token(d.controller, c.genesisHolder, c.genesisSupply, c.faucetAmount, c.faucetWait);
        d.rounds = new RoundsManager(d.controller, c.roundLength, c.roundLockAmount);
        d.bonding = new BondingManager(d.controller, c.unbondingPeriod, c.numTranscoders, c.numActiveTranscoders);
        d.minter = new Minter(d.controller, c.inflation, c.inflationChange, c.targetBondingRate);
        d.jobs = new JobsManager(d.controller, c.jobs);
        address[] memory solvers = new address[](c.solver == address(0) ? 0 : 1);
        if (c.solver != address(0)) solvers[0] = c.solver;
        d.verifier = new Verifier(d.controller, solvers);
        d.serviceRegistry = new ServiceRegistry(d.controller);
        d.controller.setContract(keccak256("Token"), address(d.token));
        d.controller.setContract(keccak256("RoundsManager"), address(d.rounds));
        d.controller.setContract(keccak256("BondingManager"), address(d.bonding));
        d.controller.setContract(keccak256("Minter"), address(d.minter));
        d.controller.setContract(keccak256("JobsManager"), address(d.jobs));
        d.controller.setContract(keccak256("Verifier"), address(d.verifier));
        d.controller.setContract(keccak256("ServiceRegistry"), address(d.serviceRegistry));
    }
}
