// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {ProtocolHashes} from "../src/ProtocolHashes.sol";

/// @notice The golden vectors that agent/chain (Rust) generates and checks, checked here against the contracts'
/// own hash library and foundry's signer: both sides of the protocol compute the same bytes.
contract VectorsTest is Test {
    string json;

    function setUp() public {
        json = vm.readFile("vectors/hashes.json");
    }

    function key(string memory a, uint256 i, string memory b) internal pure returns (string memory) {
        return string.concat(a, "[", _u(i), "]", b);
    }

    function test_segmentsSignaturesReceipts() public view {
        uint256 pk = uint256(vm.parseJsonBytes32(json, ".broadcasterPrivateKey"));
        assertEq(vm.addr(pk), vm.parseJsonAddress(json, ".broadcasterAddress"), "broadcaster address");
        for (uint256 i = 0; i < 5; i++) {
            _checkSegment(i, pk);
        }
    }

    function _checkSegment(uint256 i, uint256 pk) internal view {
        string memory streamId = vm.parseJsonString(json, ".streamId");
        uint256 seg = vm.parseJsonUint(json, key(".segments", i, ".segNo"));
        bytes32 dataHash = vm.parseJsonBytes32(json, key(".segments", i, ".dataHash"));
        assertEq(keccak256(vm.parseJsonBytes(json, key(".segments", i, ".data"))), dataHash, "dataHash");
        bytes32 tdh = _transcodedDataHash(i);
        assertEq(tdh, vm.parseJsonBytes32(json, key(".segments", i, ".transcodedDataHash")), "transcodedDataHash");
        bytes32 sh = ProtocolHashes.segmentHash(streamId, seg, dataHash);
        assertEq(sh, vm.parseJsonBytes32(json, key(".segments", i, ".segmentHash")), "segment hash");
        bytes memory sig = _checkSignature(i, pk, sh);
        bytes32 receipt = ProtocolHashes.receiptHash(streamId, seg, dataHash, tdh, sig);
        assertEq(receipt, vm.parseJsonBytes32(json, key(".segments", i, ".receiptHash")), "receipt hash");
        bytes memory proof = vm.parseJsonBytes(json, key(".merkleProofs", i, ""));
        assertTrue(ProtocolHashes.verifyProof(proof, vm.parseJsonBytes32(json, ".merkleRoot"), receipt), "proof");
    }

    /// keccak256 of the renditions' keccak256 hashes, in profile order
    function _transcodedDataHash(uint256 i) internal view returns (bytes32) {
        bytes memory cat;
        for (uint256 r = 0; r < 3; r++) {
            bytes memory rendition =
                vm.parseJsonBytes(json, string.concat(key(".segments", i, ".renditions"), "[", _u(r), "]"));
            cat = abi.encodePacked(cat, keccak256(rendition));
        }
        return keccak256(cat);
    }

    function _checkSignature(uint256 i, uint256 pk, bytes32 segmentHash) internal view returns (bytes memory sig) {
        bytes32 digest = ProtocolHashes.ethSignedMessageHash(segmentHash);
        assertEq(digest, vm.parseJsonBytes32(json, key(".segments", i, ".signedDigest")), "EIP-191 digest");
        sig = vm.parseJsonBytes(json, key(".segments", i, ".broadcasterSig"));
        assertEq(ProtocolHashes.recover(digest, sig), vm.addr(pk), "signature recovers the broadcaster");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest); // RFC 6979: the same bytes as ethers-signers
        assertEq(keccak256(abi.encodePacked(r, s, v)), keccak256(sig), "deterministic signature");
    }

    function test_profilesAndChallenges() public view {
        assertEq(
            keccak256(bytes(vm.parseJsonString(json, ".transcodingOptions"))),
            keccak256("49d54ea993c717e7c0a6517a"),
            "options"
        );
        assertEq(bytes32(bytes4(keccak256("P720p30fps16x9"))), bytes32(bytes4(0x49d54ea9)), "profile id");
        for (uint256 i = 0; i < 4; i++) {
            bool want = vm.parseJsonBool(json, key(".challenges", i, ".challenged"));
            bool got = ProtocolHashes.challenged(
                vm.parseJsonUint(json, key(".challenges", i, ".claimBlock")),
                vm.parseJsonBytes32(json, key(".challenges", i, ".nextBlockHash")),
                vm.parseJsonUint(json, key(".challenges", i, ".segNo")),
                vm.parseJsonUint(json, key(".challenges", i, ".verificationRate"))
            );
            assertTrue(got == want, "challenge rule");
        }
    }
}
