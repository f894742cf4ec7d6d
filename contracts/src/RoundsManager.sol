// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "./Controller.sol";
import {Manager} from "./Manager.sol";
import {IBondingManager, IMinter} from "./Interfaces.sol";

/// @notice Rounds of `roundLength` blocks. Round n spans blocks [n * roundLength, (n + 1) * roundLength).
/// `initializeRound()` is called once per round by anyone; it fixes the active transcoder set and the round's
/// mintable tokens. The last `roundLockAmount` millionths of a round are the lock period.
contract RoundsManager is Manager {
    uint256 public constant PERC_DIVISOR = 1_000_000;

    uint256 public immutable roundLength;
    uint256 public immutable roundLockAmount;
    uint256 public lastInitializedRound;
    bool public anyRoundInitialized;

    event NewRound(uint256 indexed round);

    error RoundAlreadyInitialized(uint256 round);
    error BlockHashUnavailable(uint256 blockNumber);
    error InvalidParameter();

    constructor(Controller controller_, uint256 roundLength_, uint256 roundLockAmount_) Manager(controller_) {
        if (roundLength_ == 0 || roundLockAmount_ > PERC_DIVISOR) revert InvalidParameter();
        roundLength = roundLength_;
        roundLockAmount = roundLockAmount_;
    }

    function blockNum() public view returns (uint256) {
        return block.number;
    }

    /// @notice hash of block `blockNumber`, which must be one of the last 256 blocks (not the current one).
    function blockHash(uint256 blockNumber) public view returns (bytes32) {
        if (blockNumber >= block.number || block.number - blockNumber > 256) revert BlockHashUnavailable(blockNumber);
        return blockhash(blockNumber);
    }

    function currentRound() public view returns (uint256) {
        return block.number / roundLength;
    }

    function currentRoundStartBlock() public view returns (uint256) {
        return currentRound() * roundLength;
    }

    function currentRoundInitialized() public view returns (bool) {
        return anyRoundInitialized && lastInitializedRound == currentRound();
    }

    /// @notice true during the last `roundLockAmount` millionths of the round.
    function currentRoundLocked() public view returns (bool) {
        uint256 lockBlocks = roundLength * roundLockAmount / PERC_DIVISOR;
        return block.number - currentRoundStartBlock() >= roundLength - lockBlocks;
    }

    function initializeRound() external whenSystemNotPaused {
        uint256 round = currentRound();
        if (anyRoundInitialized && lastInitializedRound == round) revert RoundAlreadyInitialized(round);
        lastInitializedRound = round;
        anyRoundInitialized = true;
        IBondingManager(_contract(BONDING_MANAGER)).setActiveTranscoders();
        IMinter(_contract(MINTER)).setCurrentRewardTokens();
        emit NewRound(round);
    }
}
