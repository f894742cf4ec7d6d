// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "../test/utils/Test.sol";
import {DeployLib} from "./DeployLib.sol";
import {JobsManager} from "../src/JobsManager.sol";

/// @notice Deploys the whole set and writes deployments/<chainId>.json (or $DEPLOY_OUT, which must be under
/// deployments/). Every parameter can be overridden by an environment variable of the same name in upper
/// snake case (ROUND_LENGTH, VERIFICATION_RATE, ...); the defaults are DeployLib.devConfig. Run it through
/// contracts/deploy.sh.
contract Deploy {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external {
        uint256 key = vm.envUint("DEPLOYER_PRIVATE_KEY");
        address deployer = vm.addr(key);
        DeployLib.Config memory c = DeployLib.devConfig(deployer, deployer);
        c.roundLength = vm.envOr("ROUND_LENGTH", c.roundLength);
        c.roundLockAmount = vm.envOr("ROUND_LOCK_AMOUNT", c.roundLockAmount);
        c.unbondingPeriod = vm.envOr("UNBONDING_PERIOD", c.unbondingPeriod);
        c.numTranscoders = vm.envOr("NUM_TRANSCODERS", c.numTranscoders);
        c.numActiveTranscoders = vm.envOr("NUM_ACTIVE_TRANSCODERS", c.numActiveTranscoders);
        c.inflation = vm.envOr("INFLATION", c.inflation);
        c.inflationChange = vm.envOr("INFLATION_CHANGE", c.inflationChange);
        c.targetBondingRate = vm.envOr("TARGET_BONDING_RATE", c.targetBondingRate);
        c.genesisSupply = vm.envOr("GENESIS_SUPPLY", c.genesisSupply);
        c.faucetAmount = vm.envOr("FAUCET_AMOUNT", c.faucetAmount);
        c.faucetWait = vm.envOr("FAUCET_WAIT", c.faucetWait);
        c.solver = address(uint160(vm.envOr("SOLVER", uint256(uint160(deployer)))));
        JobsManager.Params memory p = c.jobs;
        p.verificationRate = vm.envOr("VERIFICATION_RATE", p.verificationRate);
        p.verificationPeriod = vm.envOr("VERIFICATION_PERIOD", p.verificationPeriod);
        p.verificationSlashingPeriod = vm.envOr("VERIFICATION_SLASHING_PERIOD", p.verificationSlashingPeriod);
        p.failedVerificationSlashAmount = vm.envOr("FAILED_VERIFICATION_SLASH_AMOUNT", p.failedVerificationSlashAmount);
        p.missedVerificationSlashAmount = vm.envOr("MISSED_VERIFICATION_SLASH_AMOUNT", p.missedVerificationSlashAmount);
        p.doubleClaimSegmentSlashAmount = vm.envOr("DOUBLE_CLAIM_SEGMENT_SLASH_AMOUNT", p.doubleClaimSegmentSlashAmount);
        p.finderFee = vm.envOr("FINDER_FEE", p.finderFee);

        uint256 firstBlock = block.number;
        vm.startBroadcast(key);
        DeployLib.Deployment memory d = DeployLib.deploy(c);
        vm.stopBroadcast();

        string memory o = "deployment";
        vm.serializeUint(o, "chainId", block.chainid);
        vm.serializeUint(o, "deployBlock", firstBlock);
        vm.serializeAddress(o, "deployer", deployer);
        vm.serializeAddress(o, "solver", c.solver);
        vm.serializeAddress(o, "controller", address(d.controller));
        vm.serializeAddress(o, "token", address(d.token));
        vm.serializeAddress(o, "roundsManager", address(d.rounds));
        vm.serializeAddress(o, "bondingManager", address(d.bonding));
        vm.serializeAddress(o, "minter", address(d.minter));
        vm.serializeAddress(o, "jobsManager", address(d.jobs));
        vm.serializeAddress(o, "verifier", address(d.verifier));
        string memory json = vm.serializeAddress(o, "serviceRegistry", address(d.serviceRegistry));
        string memory out = vm.envOr("DEPLOY_OUT", string.concat("deployments/", vm.toString(block.chainid), ".json"));
        vm.writeJson(json, out);
    }
}
