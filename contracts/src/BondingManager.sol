// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "./Controller.sol";
import {Manager} from "./Manager.sol";
import {Token} from "./Token.sol";
import {IRoundsManager, IMinter} from "./Interfaces.sol";

/// @notice Bonding, delegation, the transcoder pool, the per-round active set, rewards, fees, election and
/// slashing. Percentages are millionths (PERC_DIVISOR). Rounds come from the RoundsManager.
contract BondingManager is Manager {
    uint256 public constant PERC_DIVISOR = 1_000_000;

    /// @notice rounds between unbond() and the round from which withdrawStake() succeeds.
    uint256 public immutable unbondingPeriod;
    /// @notice bound of the transcoder pool (sorted by total stake, largest first).
    uint256 public immutable numTranscoders;
    /// @notice the top `numActiveTranscoders` of the pool form a round's active set.
    uint256 public immutable numActiveTranscoders;

    struct Transcoder {
        uint256 rewardCut; // share of rewards the transcoder keeps
        uint256 feeShare; // share of fees that goes to delegators (incl. the transcoder's own stake)
        uint256 pricePerSegment; // wei per segment per profile
        uint256 lastRewardRound;
        uint256 delegatedAmount; // total stake bonded to this address (own bond included)
    }

    /// @notice One transcoder's earnings in one round, split at crediting time into the delegators' pools
    /// (shared pro rata to stake, the transcoder's own stake included) and the transcoder's cut.
    struct EarningsPool {
        uint256 rewardPool;
        uint256 feePool;
        uint256 transcoderRewardPool;
        uint256 transcoderFeePool;
        uint256 totalStake; // stake snapshot at round initialization
        uint256 claimableStake; // part of totalStake not claimed yet
        uint256 rewardCut;
        uint256 feeShare;
        uint256 pricePerSegment;
    }

    struct Delegator {
        uint256 bondedAmount;
        uint256 fees; // claimed fees (wei), withdrawable with withdrawFees()
        address delegateAddress;
        uint256 startRound; // first round whose earnings this bond shares
        uint256 lastClaimRound;
        uint256 unbondingAmount;
        uint256 withdrawRound;
        uint256 roundStake; // bondedAmount as it was when round `roundStakeRound` was snapshotted
        uint256 roundStakeRound;
    }

    enum DelegatorStatus {
        Pending,
        Bonded,
        Unbonded
    }

    mapping(address => Transcoder) private transcoders;
    mapping(address => mapping(uint256 => EarningsPool)) private earningsPools;
    mapping(address => Delegator) private delegators;
    uint256 private totalBonded;

    // sorted transcoder pool: doubly linked list, head has the largest stake
    mapping(address => address) private nextInPool;
    mapping(address => address) private prevInPool;
    mapping(address => bool) private inPool;
    address private poolHead;
    address private poolTail;
    uint256 private poolSize;

    // active set per round
    mapping(uint256 => address[]) private activeList;
    mapping(uint256 => mapping(address => bool)) private active;
    mapping(uint256 => uint256) private totalActiveStake;
    // per round, in activeList order: (pricePerSegment << 128) | stake, one slot per transcoder so that an
    // election reads one cold slot per active transcoder (stake 0 once slashed)
    mapping(uint256 => uint256[]) private activeTerms;

    event TranscoderUpdate(address indexed transcoder, uint256 rewardCut, uint256 feeShare, uint256 pricePerSegment);
    event TranscoderEvicted(address indexed transcoder);
    event TranscoderResigned(address indexed transcoder);
    event TranscoderSlashed(address indexed transcoder, address finder, uint256 penalty, uint256 finderReward);
    event Reward(address indexed transcoder, uint256 amount);
    event Bond(address indexed delegator, address indexed delegate, uint256 amount, uint256 bondedAmount);
    event Unbond(address indexed delegator, address indexed delegate, uint256 amount, uint256 withdrawRound);
    event WithdrawStake(address indexed delegator, uint256 amount);
    event WithdrawFees(address indexed delegator, uint256 amount);
    event EarningsClaimed(address indexed delegator, uint256 endRound, uint256 rewards, uint256 fees);

    error InvalidParameter();
    error RoundNotInitialized();
    error RoundLocked();
    error NotSelfBonded();
    error PoolFull(uint256 lowestStake);
    error ZeroAddress();
    error TranscoderCannotRedelegate();
    error InsufficientBond(uint256 bonded, uint256 wanted);
    error NothingToWithdraw();
    error UnbondingPeriodNotOver(uint256 withdrawRound);
    error NotActiveTranscoder();
    error RewardAlreadyCalled(uint256 round);
    error InvalidEndRound(uint256 endRound);
    error TokenTransferFailed();

    constructor(Controller controller_, uint256 unbondingPeriod_, uint256 numTranscoders_, uint256 numActiveTranscoders_)
        Manager(controller_)
    {
        if (numTranscoders_ == 0 || numActiveTranscoders_ == 0 || numActiveTranscoders_ > numTranscoders_) {
            revert InvalidParameter();
        }
        unbondingPeriod = unbondingPeriod_;
        numTranscoders = numTranscoders_;
        numActiveTranscoders = numActiveTranscoders_;
    }

    // ------------------------------------------------------------------ modifiers and helpers

    modifier currentRoundInitialized() {
        if (!_rounds().currentRoundInitialized()) revert RoundNotInitialized();
        _;
    }

    function _rounds() internal view returns (IRoundsManager) {
        return IRoundsManager(_contract(ROUNDS_MANAGER));
    }

    function _token() internal view returns (Token) {
        return Token(_contract(TOKEN));
    }

    function _currentRound() internal view returns (uint256) {
        return _rounds().currentRound();
    }

    // ------------------------------------------------------------------ transcoders

    /// @notice register (or update the terms of) the caller as a transcoder. The caller must be bonded to
    /// itself; not allowed during the round's lock period.
    function transcoder(uint256 rewardCut, uint256 feeShare, uint256 pricePerSegment)
        external
        whenSystemNotPaused
        currentRoundInitialized
    {
        if (_rounds().currentRoundLocked()) revert RoundLocked();
        if (rewardCut > PERC_DIVISOR || feeShare > PERC_DIVISOR || pricePerSegment > type(uint128).max) {
            revert InvalidParameter();
        }
        Delegator storage del = delegators[msg.sender];
        if (del.delegateAddress != msg.sender || del.bondedAmount == 0) revert NotSelfBonded();
        Transcoder storage t = transcoders[msg.sender];
        t.rewardCut = rewardCut;
        t.feeShare = feeShare;
        t.pricePerSegment = pricePerSegment;
        if (!inPool[msg.sender]) _poolInsert(msg.sender);
        emit TranscoderUpdate(msg.sender, rewardCut, feeShare, pricePerSegment);
    }

    // ------------------------------------------------------------------ bonding

    /// @notice bond `amount` more tokens (transferred from the caller; approve first) to `to`, moving any
    /// existing bond there too. Bonding to another address is delegation.
    function bond(uint256 amount, address to) external whenSystemNotPaused currentRoundInitialized {
        if (to == address(0)) revert ZeroAddress();
        uint256 cr = _currentRound();
        _autoClaim(msg.sender, cr);
        Delegator storage del = delegators[msg.sender];
        address cur = del.delegateAddress;
        uint256 moved = amount;
        if (cur == address(0) || (del.bondedAmount == 0 && cur != to)) {
            // fresh bond: shares earnings from the next round on
            del.startRound = cr + 1;
            del.lastClaimRound = cr;
        } else if (cur != to) {
            if (inPool[msg.sender]) revert TranscoderCannotRedelegate();
            // the moved stake shares the new delegate's earnings from the next round on; the current round's
            // share with the old delegate is forfeited (it stays in the old pool)
            moved += del.bondedAmount;
            transcoders[cur].delegatedAmount -= del.bondedAmount;
            if (inPool[cur]) _poolUpdate(cur);
            del.startRound = cr + 1;
            del.lastClaimRound = cr;
        } else {
            _checkpoint(del, cr);
        }
        del.delegateAddress = to;
        del.bondedAmount += amount;
        transcoders[to].delegatedAmount += moved;
        totalBonded += amount;
        if (inPool[to]) _poolUpdate(to);
        if (amount > 0 && !_token().transferFrom(msg.sender, address(this), amount)) revert TokenTransferFailed();
        emit Bond(msg.sender, to, amount, del.bondedAmount);
    }

    /// @notice start unbonding `amount`; it can be withdrawn once `unbondingPeriod` rounds have passed. A
    /// further unbond adds to the same lock and restarts its period. A transcoder that unbonds its whole
    /// stake leaves the pool.
    function unbond(uint256 amount) external whenSystemNotPaused currentRoundInitialized {
        uint256 cr = _currentRound();
        _autoClaim(msg.sender, cr);
        Delegator storage del = delegators[msg.sender];
        if (amount == 0 || del.bondedAmount < amount) revert InsufficientBond(del.bondedAmount, amount);
        _checkpoint(del, cr);
        address to = del.delegateAddress;
        del.bondedAmount -= amount;
        transcoders[to].delegatedAmount -= amount;
        totalBonded -= amount;
        del.unbondingAmount += amount;
        del.withdrawRound = cr + unbondingPeriod;
        if (inPool[to]) {
            if (to == msg.sender && del.bondedAmount == 0) _resign(to);
            else _poolUpdate(to);
        }
        emit Unbond(msg.sender, to, amount, del.withdrawRound);
    }

    function withdrawStake() external whenSystemNotPaused currentRoundInitialized {
        Delegator storage del = delegators[msg.sender];
        uint256 amount = del.unbondingAmount;
        if (amount == 0) revert NothingToWithdraw();
        if (_currentRound() < del.withdrawRound) revert UnbondingPeriodNotOver(del.withdrawRound);
        del.unbondingAmount = 0;
        del.withdrawRound = 0;
        if (!_token().transfer(msg.sender, amount)) revert TokenTransferFailed();
        emit WithdrawStake(msg.sender, amount);
    }

    /// @notice claim rewards (compounded into the bond) and fees of the rounds up to `endRound`, which must be
    /// a finished round (< current round). Other bonding calls claim up to the last finished round by
    /// themselves; calling this with an earlier endRound bounds the work of one transaction.
    function claimEarnings(uint256 endRound) external whenSystemNotPaused currentRoundInitialized {
        Delegator storage del = delegators[msg.sender];
        if (endRound >= _currentRound() || endRound <= del.lastClaimRound) revert InvalidEndRound(endRound);
        _claim(msg.sender, endRound);
    }

    function withdrawFees() external whenSystemNotPaused currentRoundInitialized {
        _autoClaim(msg.sender, _currentRound());
        Delegator storage del = delegators[msg.sender];
        uint256 amount = del.fees;
        if (amount == 0) revert NothingToWithdraw();
        del.fees = 0;
        IMinter(_contract(MINTER)).trustedWithdrawETH(payable(msg.sender), amount);
        emit WithdrawFees(msg.sender, amount);
    }

    // ------------------------------------------------------------------ rounds, rewards, fees

    /// @notice RoundsManager, at round initialization: the top of the pool becomes the round's active set and
    /// their stake and terms are snapshotted into the round's earnings pools.
    function setActiveTranscoders() external onlyContract(ROUNDS_MANAGER) whenSystemNotPaused {
        uint256 round = _currentRound();
        address t = poolHead;
        uint256 total;
        for (uint256 i = 0; i < numActiveTranscoders && t != address(0); i++) {
            Transcoder storage tr = transcoders[t];
            uint256 stake = tr.delegatedAmount;
            activeList[round].push(t);
            active[round][t] = true;
            EarningsPool storage ep = earningsPools[t][round];
            ep.totalStake = stake;
            ep.claimableStake = stake;
            ep.rewardCut = tr.rewardCut;
            ep.feeShare = tr.feeShare;
            ep.pricePerSegment = tr.pricePerSegment;
            // price < 2^128 (checked in transcoder()); stake <= the token supply
            activeTerms[round].push((tr.pricePerSegment << 128) | stake);
            total += stake;
            t = nextInPool[t];
        }
        totalActiveStake[round] = total;
    }

    /// @notice once per round, by an active transcoder: mint its pro-rata share of the round's mintable tokens
    /// and split it by rewardCut between itself and its delegators.
    function reward() external whenSystemNotPaused currentRoundInitialized {
        uint256 round = _currentRound();
        if (!active[round][msg.sender]) revert NotActiveTranscoder();
        Transcoder storage t = transcoders[msg.sender];
        if (t.lastRewardRound == round) revert RewardAlreadyCalled(round);
        t.lastRewardRound = round;
        EarningsPool storage ep = earningsPools[msg.sender][round];
        uint256 minted = IMinter(_contract(MINTER)).createReward(ep.totalStake, totalActiveStake[round]);
        uint256 cut = minted * ep.rewardCut / PERC_DIVISOR;
        ep.transcoderRewardPool += cut;
        ep.rewardPool += minted - cut;
        t.delegatedAmount += minted;
        totalBonded += minted;
        if (inPool[msg.sender]) _poolUpdate(msg.sender);
        emit Reward(msg.sender, minted);
    }

    /// @notice JobsManager: credit `fees` (wei, already held by the Minter) earned in round `round`. They go to
    /// the transcoder's earnings pool of the current round when it is active now (so no delegator has claimed
    /// that round yet), else entirely to the transcoder's own fees.
    function updateTranscoderWithFees(address transcoderAddr, uint256 fees, uint256 round)
        external
        onlyContract(JOBS_MANAGER)
        whenSystemNotPaused
    {
        round; // the round the fees were earned in; kept in the interface for event consumers
        uint256 cr = _currentRound();
        EarningsPool storage ep = earningsPools[transcoderAddr][cr];
        if (active[cr][transcoderAddr] && ep.claimableStake > 0) {
            uint256 delegatorsFees = fees * ep.feeShare / PERC_DIVISOR;
            ep.feePool += delegatorsFees;
            ep.transcoderFeePool += fees - delegatorsFees;
        } else {
            delegators[transcoderAddr].fees += fees;
        }
    }

    /// @notice JobsManager: burn `slashAmount` millionths of the transcoder's own bond; `finderFee` millionths
    /// of the penalty go to `finder` (when not zero). The transcoder leaves the pool and the current active set
    /// (no reward, never elected); the round's total active stake is unchanged, so the others' rewards are too.
    function slashTranscoder(address transcoderAddr, address finder, uint256 slashAmount, uint256 finderFee)
        external
        onlyContract(JOBS_MANAGER)
        whenSystemNotPaused
    {
        uint256 cr = _currentRound();
        Delegator storage del = delegators[transcoderAddr];
        uint256 penalty = del.bondedAmount * slashAmount / PERC_DIVISOR;
        uint256 finderReward;
        if (penalty > 0) {
            _checkpoint(del, cr);
            del.bondedAmount -= penalty;
            transcoders[del.delegateAddress].delegatedAmount -= penalty;
            totalBonded -= penalty;
            if (finder != address(0)) {
                finderReward = penalty * finderFee / PERC_DIVISOR;
                if (finderReward > 0 && !_token().transfer(finder, finderReward)) revert TokenTransferFailed();
            }
            _token().burn(penalty - finderReward);
        }
        if (inPool[transcoderAddr]) _resign(transcoderAddr);
        if (active[cr][transcoderAddr]) {
            // totalActiveStake stays: it is the denominator of the round's rewards, some possibly minted already
            active[cr][transcoderAddr] = false;
            address[] storage list = activeList[cr];
            for (uint256 i = 0; i < list.length; i++) {
                if (list[i] == transcoderAddr) {
                    activeTerms[cr][i] = (activeTerms[cr][i] >> 128) << 128; // no stake: never elected again
                    break;
                }
            }
        }
        emit TranscoderSlashed(transcoderAddr, finder, penalty, finderReward);
    }

    /// @notice stake-weighted pick among the round's active transcoders whose price is <= maxPricePerSegment:
    /// r = uint256(keccak256(abi.encodePacked(seed))) % eligibleStake, then the first transcoder (in active-set
    /// order) whose cumulative eligible stake exceeds r. Returns it with its price in that round, or
    /// (address(0), 0) when none is eligible. Slashed transcoders are not eligible.
    function electActiveTranscoder(uint256 maxPricePerSegment, bytes32 seed, uint256 round)
        external
        view
        returns (address elected, uint256 pricePerSegment)
    {
        uint256[] storage terms = activeTerms[round];
        uint256 n = terms.length;
        uint256[] memory cache = new uint256[](n);
        uint256 total;
        for (uint256 i = 0; i < n; i++) {
            uint256 e = terms[i];
            cache[i] = e;
            if (e >> 128 <= maxPricePerSegment) total += e & type(uint128).max;
        }
        if (total == 0) return (address(0), 0);
        uint256 r = uint256(keccak256(abi.encodePacked(seed))) % total;
        uint256 cum;
        for (uint256 i = 0; i < n; i++) {
            uint256 e = cache[i];
            if (e >> 128 <= maxPricePerSegment) {
                cum += e & type(uint128).max;
                if (r < cum) return (activeList[round][i], e >> 128);
            }
        }
        return (address(0), 0); // unreachable
    }

    // ------------------------------------------------------------------ views

    function getTranscoder(address t)
        external
        view
        returns (uint256 rewardCut, uint256 feeShare, uint256 pricePerSegment, uint256 lastRewardRound, uint256 delegatedAmount)
    {
        Transcoder storage tr = transcoders[t];
        return (tr.rewardCut, tr.feeShare, tr.pricePerSegment, tr.lastRewardRound, tr.delegatedAmount);
    }

    function getDelegator(address d)
        external
        view
        returns (
            uint256 bondedAmount,
            uint256 fees,
            address delegateAddress,
            uint256 startRound,
            uint256 lastClaimRound,
            uint256 unbondingAmount,
            uint256 withdrawRound
        )
    {
        Delegator storage del = delegators[d];
        return (
            del.bondedAmount,
            del.fees,
            del.delegateAddress,
            del.startRound,
            del.lastClaimRound,
            del.unbondingAmount,
            del.withdrawRound
        );
    }

    function delegatorStatus(address d) external view returns (DelegatorStatus) {
        Delegator storage del = delegators[d];
        if (del.bondedAmount == 0) return DelegatorStatus.Unbonded;
        if (del.startRound > _currentRound()) return DelegatorStatus.Pending;
        return DelegatorStatus.Bonded;
    }

    function getEarningsPool(address t, uint256 round)
        external
        view
        returns (
            uint256 rewardPool,
            uint256 feePool,
            uint256 transcoderRewardPool,
            uint256 transcoderFeePool,
            uint256 totalStake,
            uint256 claimableStake
        )
    {
        EarningsPool storage ep = earningsPools[t][round];
        return (ep.rewardPool, ep.feePool, ep.transcoderRewardPool, ep.transcoderFeePool, ep.totalStake, ep.claimableStake);
    }

    /// @notice bond and fees the delegator would have after claiming up to `endRound` (< current round).
    function pendingEarnings(address d, uint256 endRound) external view returns (uint256 stake, uint256 fees) {
        Delegator storage del = delegators[d];
        (stake, fees) = (del.bondedAmount, del.fees);
        address t = del.delegateAddress;
        if (t == address(0)) return (stake, fees);
        for (uint256 r = del.lastClaimRound + 1; r <= endRound; r++) {
            if (r < del.startRound) continue;
            EarningsPool storage ep = earningsPools[t][r];
            if (ep.claimableStake == 0) continue;
            uint256 s = r == del.roundStakeRound ? del.roundStake : stake;
            if (s > ep.claimableStake) s = ep.claimableStake;
            uint256 rw = ep.rewardPool * s / ep.claimableStake;
            uint256 fe = ep.feePool * s / ep.claimableStake;
            if (d == t) {
                rw += ep.transcoderRewardPool;
                fe += ep.transcoderFeePool;
            }
            stake += rw;
            fees += fe;
        }
    }

    function transcoderTotalStake(address t) external view returns (uint256) {
        return transcoders[t].delegatedAmount;
    }

    function activeTranscoderPrice(address t, uint256 round) external view returns (uint256) {
        return earningsPools[t][round].pricePerSegment;
    }

    function isRegisteredTranscoder(address t) external view returns (bool) {
        return inPool[t];
    }

    function isActiveTranscoder(address t, uint256 round) external view returns (bool) {
        return active[round][t];
    }

    function getActiveTranscoders(uint256 round) external view returns (address[] memory) {
        return activeList[round];
    }

    function getTotalActiveStake(uint256 round) external view returns (uint256) {
        return totalActiveStake[round];
    }

    function getTotalBonded() external view returns (uint256) {
        return totalBonded;
    }

    function getTranscoderPoolSize() external view returns (uint256) {
        return poolSize;
    }

    function getFirstTranscoderInPool() external view returns (address) {
        return poolHead;
    }

    function getNextTranscoderInPool(address t) external view returns (address) {
        return nextInPool[t];
    }

    // ------------------------------------------------------------------ internals

    function _checkpoint(Delegator storage del, uint256 cr) internal {
        if (del.roundStakeRound != cr) {
            del.roundStake = del.bondedAmount;
            del.roundStakeRound = cr;
        }
    }

    function _autoClaim(address d, uint256 cr) internal {
        Delegator storage del = delegators[d];
        if (del.delegateAddress != address(0) && cr > 0 && del.lastClaimRound < cr - 1) _claim(d, cr - 1);
    }

    function _claim(address d, uint256 endRound) internal {
        Delegator storage del = delegators[d];
        address t = del.delegateAddress;
        uint256 stake = del.bondedAmount;
        uint256 totalRewards;
        uint256 totalFees;
        if (t != address(0)) {
            for (uint256 r = del.lastClaimRound + 1; r <= endRound; r++) {
                if (r < del.startRound) continue;
                EarningsPool storage ep = earningsPools[t][r];
                if (ep.claimableStake == 0) continue;
                uint256 s = r == del.roundStakeRound ? del.roundStake : stake;
                if (s > ep.claimableStake) s = ep.claimableStake;
                uint256 rw = ep.rewardPool * s / ep.claimableStake;
                uint256 fe = ep.feePool * s / ep.claimableStake;
                ep.rewardPool -= rw;
                ep.feePool -= fe;
                ep.claimableStake -= s;
                if (d == t) {
                    rw += ep.transcoderRewardPool;
                    fe += ep.transcoderFeePool;
                    ep.transcoderRewardPool = 0;
                    ep.transcoderFeePool = 0;
                }
                stake += rw;
                totalRewards += rw;
                totalFees += fe;
            }
        }
        del.bondedAmount = stake;
        del.fees += totalFees;
        del.lastClaimRound = endRound;
        emit EarningsClaimed(d, endRound, totalRewards, totalFees);
    }

    function _resign(address t) internal {
        _poolRemove(t);
        emit TranscoderResigned(t);
    }

    function _poolInsert(address t) internal {
        uint256 stake = transcoders[t].delegatedAmount;
        if (poolSize == numTranscoders) {
            address last = poolTail;
            uint256 lowest = transcoders[last].delegatedAmount;
            if (stake <= lowest) revert PoolFull(lowest);
            _poolRemove(last);
            emit TranscoderEvicted(last);
        }
        _poolLink(t, stake);
    }

    function _poolUpdate(address t) internal {
        _poolRemove(t);
        _poolLink(t, transcoders[t].delegatedAmount);
    }

    /// @dev insert after every member with stake >= `stake` (ties keep their seniority).
    function _poolLink(address t, uint256 stake) internal {
        address after_;
        address cur = poolHead;
        while (cur != address(0) && transcoders[cur].delegatedAmount >= stake) {
            after_ = cur;
            cur = nextInPool[cur];
        }
        prevInPool[t] = after_;
        nextInPool[t] = cur;
        if (after_ == address(0)) poolHead = t;
        else nextInPool[after_] = t;
        if (cur == address(0)) poolTail = t;
        else prevInPool[cur] = t;
        inPool[t] = true;
        poolSize++;
    }

    function _poolRemove(address t) internal {
        address p = prevInPool[t];
        address n = nextInPool[t];
        if (p == address(0)) poolHead = n;
        else nextInPool[p] = n;
        if (n == address(0)) poolTail = p;
        else prevInPool[n] = p;
        delete prevInPool[t];
        delete nextInPool[t];
        inPool[t] = false;
        poolSize--;
    }
}
