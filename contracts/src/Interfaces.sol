// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

interface IRoundsManager {
    function currentRound() external view returns (uint256);
    function currentRoundInitialized() external view returns (bool);
    function currentRoundLocked() external view returns (bool);
    function blockHash(uint256 blockNumber) external view returns (bytes32);
}

interface IBondingManager {
    function setActiveTranscoders() external;
    function electActiveTranscoder(uint256 maxPricePerSegment, bytes32 seed, uint256 round)
        external
        view
        returns (address transcoder, uint256 pricePerSegment);
    function activeTranscoderPrice(address transcoder, uint256 round) external view returns (uint256);
    function updateTranscoderWithFees(address transcoder, uint256 fees, uint256 round) external;
    function slashTranscoder(address transcoder, address finder, uint256 slashAmount, uint256 finderFee) external;
    function getTotalBonded() external view returns (uint256);
}

interface IMinter {
    function setCurrentRewardTokens() external;
    function createReward(uint256 fracNum, uint256 fracDenom) external returns (uint256);
    function depositETH() external payable;
    function trustedWithdrawETH(address payable to, uint256 amount) external;
}

interface IJobsManager {
    function receiveVerification(uint256 jobId, uint256 claimId, uint256 segmentNumber, bool result) external;
}

/// @notice What JobsManager needs from a verifier. Today a set of trusted solvers (Verifier.sol) answers;
/// a Truebit-style verification game can replace it behind this interface.
interface IVerifier {
    function verify(
        uint256 jobId,
        uint256 claimId,
        uint256 segmentNumber,
        string calldata transcodingOptions,
        string calldata dataStorageHash,
        bytes32[2] calldata dataHashes
    ) external payable;

    /// @notice wei the caller must attach to verify() (0 for the trusted-solver verifier).
    function getPrice() external view returns (uint256);
}
