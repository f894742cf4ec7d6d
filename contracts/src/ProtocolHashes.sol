// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @notice The hash rules the agent and the contracts must agree on (see contracts/README.md, "Hash rules").
library ProtocolHashes {
    error InvalidSignatureLength(uint256 length);
    error InvalidSignatureS();
    error InvalidSignatureV(uint8 v);
    error InvalidProofLength(uint256 length);

    // secp256k1n / 2: signatures with a larger s are malleable copies and are refused
    uint256 internal constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// segment hash = keccak256(abi.encodePacked(bytes(streamId), uint256 segNo, bytes32 dataHash))
    function segmentHash(string memory streamId, uint256 segmentNumber, bytes32 dataHash)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(streamId, segmentNumber, dataHash));
    }

    /// EIP-191 version 0x45: keccak256("\x19Ethereum Signed Message:\n32" ++ hash)
    function ethSignedMessageHash(bytes32 hash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", hash));
    }

    /// receipt hash = keccak256(abi.encodePacked(bytes(streamId), uint256 segNo, bytes32 dataHash,
    /// bytes32 transcodedDataHash, bytes broadcasterSig))
    function receiptHash(
        string memory streamId,
        uint256 segmentNumber,
        bytes32 dataHash,
        bytes32 transcodedDataHash,
        bytes memory broadcasterSig
    ) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(streamId, segmentNumber, dataHash, transcodedDataHash, broadcasterSig));
    }

    /// @notice signer of a 65-byte r ++ s ++ v signature (v in {27, 28} or {0, 1}); refuses high-s
    /// signatures. Returns address(0) when ecrecover fails.
    function recover(bytes32 digest, bytes memory sig) internal pure returns (address) {
        if (sig.length != 65) revert InvalidSignatureLength(sig.length);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        if (v < 27) v += 27;
        if (v != 27 && v != 28) revert InvalidSignatureV(v);
        if (uint256(s) > HALF_N) revert InvalidSignatureS();
        return ecrecover(digest, v, r, s);
    }

    /// @notice sorted-pair Merkle proof: `proof` is the concatenation of 32-byte siblings from the leaf up;
    /// each parent is keccak256(min(a, b) ++ max(a, b)).
    function verifyProof(bytes memory proof, bytes32 root, bytes32 leaf) internal pure returns (bool) {
        if (proof.length % 32 != 0) revert InvalidProofLength(proof.length);
        bytes32 h = leaf;
        for (uint256 off = 32; off <= proof.length; off += 32) {
            bytes32 sib;
            assembly {
                sib := mload(add(proof, off))
            }
            h = h < sib ? keccak256(abi.encodePacked(h, sib)) : keccak256(abi.encodePacked(sib, h));
        }
        return h == root;
    }

    /// @notice a segment of a claim made in block `claimBlock` is challenged when
    /// uint256(keccak256(abi.encodePacked(uint256 claimBlock + 1, bytes32 blockhash(claimBlock + 1),
    /// uint256 segNo))) % verificationRate == 0.
    function challenged(uint256 claimBlock, bytes32 nextBlockHash, uint256 segmentNumber, uint256 verificationRate)
        internal
        pure
        returns (bool)
    {
        return uint256(keccak256(abi.encodePacked(claimBlock + 1, nextBlockHash, segmentNumber))) % verificationRate == 0;
    }
}
