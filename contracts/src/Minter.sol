// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "./Controller.sol";
import {Manager} from "./Manager.sol";
import {Token} from "./Token.sol";
import {IBondingManager} from "./Interfaces.sol";

/// @notice Mints the round's reward tokens and holds the broadcasters' ETH.
/// Each round: inflation moves by `inflationChange` toward the target bonding rate (up when the bonded share of
/// the supply is below target, down when above, never below 0), then
/// currentMintableTokens = totalSupply * inflation / 1e6.
contract Minter is Manager {
    uint256 public constant PERC_DIVISOR = 1_000_000;

    uint256 public inflation;
    uint256 public immutable inflationChange;
    uint256 public immutable targetBondingRate;
    uint256 public currentMintableTokens;
    uint256 public currentMintedTokens;

    event SetCurrentRewardTokens(uint256 currentMintableTokens, uint256 currentInflation);

    error InvalidParameter();
    error MintableExceeded(uint256 mintable, uint256 wanted);
    error InsufficientETH(uint256 have, uint256 want);
    error TransferFailed();

    constructor(Controller controller_, uint256 inflation_, uint256 inflationChange_, uint256 targetBondingRate_)
        Manager(controller_)
    {
        if (inflation_ > PERC_DIVISOR || targetBondingRate_ > PERC_DIVISOR) revert InvalidParameter();
        inflation = inflation_;
        inflationChange = inflationChange_;
        targetBondingRate = targetBondingRate_;
    }

    /// @notice bonded tokens / total supply, in millionths.
    function currentBondingRate() public view returns (uint256) {
        uint256 supply = Token(_contract(TOKEN)).totalSupply();
        if (supply == 0) return 0;
        return IBondingManager(_contract(BONDING_MANAGER)).getTotalBonded() * PERC_DIVISOR / supply;
    }

    function setCurrentRewardTokens() external onlyContract(ROUNDS_MANAGER) whenSystemNotPaused {
        uint256 rate = currentBondingRate();
        if (rate < targetBondingRate) {
            inflation = inflation + inflationChange > PERC_DIVISOR ? PERC_DIVISOR : inflation + inflationChange;
        } else if (rate > targetBondingRate) {
            inflation = inflation > inflationChange ? inflation - inflationChange : 0;
        }
        currentMintableTokens = Token(_contract(TOKEN)).totalSupply() * inflation / PERC_DIVISOR;
        currentMintedTokens = 0;
        emit SetCurrentRewardTokens(currentMintableTokens, inflation);
    }

    /// @notice mints currentMintableTokens * fracNum / fracDenom to the BondingManager.
    function createReward(uint256 fracNum, uint256 fracDenom)
        external
        onlyContract(BONDING_MANAGER)
        whenSystemNotPaused
        returns (uint256 minted)
    {
        if (fracDenom == 0 || fracNum > fracDenom) revert InvalidParameter();
        minted = currentMintableTokens * fracNum / fracDenom;
        if (currentMintedTokens + minted > currentMintableTokens) {
            revert MintableExceeded(currentMintableTokens - currentMintedTokens, minted);
        }
        currentMintedTokens += minted;
        Token(_contract(TOKEN)).mint(msg.sender, minted);
    }

    /// @notice the JobsManager parks broadcaster deposits here.
    function depositETH() external payable onlyContract(JOBS_MANAGER) {}

    /// @notice the BondingManager (fees) and the JobsManager (broadcaster withdrawals) pay out ETH.
    function trustedWithdrawETH(address payable to, uint256 amount) external whenSystemNotPaused {
        if (msg.sender != _contract(BONDING_MANAGER) && msg.sender != _contract(JOBS_MANAGER)) {
            revert Unauthorized(msg.sender);
        }
        if (address(this).balance < amount) revert InsufficientETH(address(this).balance, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
