// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {DeployLib} from "../script/DeployLib.sol";
import {Controller} from "../src/Controller.sol";
import {Token} from "../src/Token.sol";
import {RoundsManager} from "../src/RoundsManager.sol";
import {BondingManager} from "../src/BondingManager.sol";
import {Minter} from "../src/Minter.sol";
import {JobsManager} from "../src/JobsManager.sol";
import {Verifier} from "../src/Verifier.sol";
import {ServiceRegistry} from "../src/ServiceRegistry.sol";
import {ProtocolHashes} from "../src/ProtocolHashes.sol";

/// @notice The whole contract set on dev parameters, plus actors and helpers (Merkle trees, signatures).
abstract contract Fixture is Test {
    Controller controller;
    Token token;
    RoundsManager rounds;
    BondingManager bonding;
    Minter minter;
    JobsManager jobs;
    Verifier verifier;
    ServiceRegistry serviceRegistry;
    DeployLib.Config cfg;

    address solver = address(0x501);
    address t1 = address(0x7101);
    address t2 = address(0x7102);
    address t3 = address(0x7103);
    address d1 = address(0xD001);
    address finder = address(0xF1);
    uint256 constant BKEY = 0xB0B;
    address broadcaster;

    string constant STREAM = "0x1220aabbccdd-stream";
    // P720p30fps16x9, P360p30fps16x9, P240p30fps16x9 in that (canonical) order
    string constant OPTIONS = "49d54ea993c717e7c0a6517a";

    function setUp() public virtual {
        broadcaster = vm.addr(BKEY);
        cfg = DeployLib.devConfig(address(this), solver);
        DeployLib.Deployment memory d = DeployLib.deploy(cfg);
        (controller, token, rounds, bonding, minter, jobs, verifier) =
            (d.controller, d.token, d.rounds, d.bonding, d.minter, d.jobs, d.verifier);
        serviceRegistry = d.serviceRegistry;
        vm.roll(100);
        rounds.initializeRound();
    }

    // ------------------------------------------------------------------ actors

    function fund(address who, uint256 amount) internal {
        assertTrue(token.transfer(who, amount), "fund");
    }

    function bondTo(address who, uint256 amount, address to) internal {
        fund(who, amount);
        vm.startPrank(who);
        token.approve(address(bonding), amount);
        bonding.bond(amount, to);
        vm.stopPrank();
    }

    function register(address t, uint256 stake, uint256 rewardCut, uint256 feeShare, uint256 price) internal {
        bondTo(t, stake, t);
        vm.prank(t);
        bonding.transcoder(rewardCut, feeShare, price);
    }

    /// @notice roll to the first block of the next round and initialize it.
    function nextRound() internal {
        vm.roll((rounds.currentRound() + 1) * rounds.roundLength());
        rounds.initializeRound();
    }

    function depositFor(address b, uint256 amount) internal {
        vm.deal(b, amount);
        vm.prank(b);
        jobs.deposit{value: amount}();
    }

    function elect(uint256 maxPrice, bytes32 seed, uint256 round) internal view returns (address t) {
        (t,) = bonding.electActiveTranscoder(maxPrice, seed, round);
    }

    // ------------------------------------------------------------------ receipts and trees

    function dataHash(uint256 seg) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("input segment ", seg));
    }

    function tdHash(uint256 seg) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("transcoded ", seg));
    }

    function sigFor(uint256 key, string memory streamId, uint256 seg) internal pure returns (bytes memory) {
        bytes32 digest = ProtocolHashes.ethSignedMessageHash(ProtocolHashes.segmentHash(streamId, seg, dataHash(seg)));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function receipt(string memory streamId, uint256 seg) internal pure returns (bytes32) {
        return ProtocolHashes.receiptHash(streamId, seg, dataHash(seg), tdHash(seg), sigFor(BKEY, streamId, seg));
    }

    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encodePacked(a, b)) : keccak256(abi.encodePacked(b, a));
    }

    /// @notice root of the sorted-pair tree: pairs (2i, 2i+1) per level; a lone last node goes up unchanged.
    function merkleRoot(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 n = leaves.length;
        bytes32[] memory level = leaves;
        while (n > 1) {
            uint256 m = (n + 1) / 2;
            bytes32[] memory up = new bytes32[](m);
            for (uint256 i = 0; i < m; i++) {
                up[i] = 2 * i + 1 < n ? hashPair(level[2 * i], level[2 * i + 1]) : level[2 * i];
            }
            level = up;
            n = m;
        }
        return level[0];
    }

    function merkleProof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes memory proof) {
        uint256 n = leaves.length;
        bytes32[] memory level = leaves;
        while (n > 1) {
            uint256 sib = index ^ 1;
            if (sib < n) proof = abi.encodePacked(proof, level[sib]);
            uint256 m = (n + 1) / 2;
            bytes32[] memory up = new bytes32[](m);
            for (uint256 i = 0; i < m; i++) {
                up[i] = 2 * i + 1 < n ? hashPair(level[2 * i], level[2 * i + 1]) : level[2 * i];
            }
            level = up;
            n = m;
            index /= 2;
        }
    }

    function receipts(string memory streamId, uint256 first, uint256 last) internal pure returns (bytes32[] memory r) {
        r = new bytes32[](last - first + 1);
        for (uint256 i = 0; i < r.length; i++) {
            r[i] = receipt(streamId, first + i);
        }
    }

    /// @notice first segment in [first, last] whose challenged-ness equals `want`.
    function findSegment(uint256 claimBlock, uint256 first, uint256 last, bool want) internal view returns (uint256) {
        for (uint256 s = first; s <= last; s++) {
            if (jobs.isChallenged(claimBlock, s) == want) return s;
        }
        revert AssertionFailed("no such segment in range");
    }
}
