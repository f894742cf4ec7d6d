// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "./Controller.sol";
import {Manager} from "./Manager.sol";
import {ProtocolHashes} from "./ProtocolHashes.sol";
import {IRoundsManager, IBondingManager, IMinter, IVerifier} from "./Interfaces.sol";

/// @notice Broadcaster deposits, jobs, Merkle claims of transcoded segments, verification, slashing and fees.
contract JobsManager is Manager {
    uint256 public constant PERC_DIVISOR = 1_000_000;

    struct Params {
        uint256 verificationRate; // 1 in verificationRate segments is challenged
        uint256 verificationPeriod; // blocks after the claim in which challenged segments must be verified
        uint256 verificationSlashingPeriod; // blocks after that in which a missed verification can be slashed
        uint256 failedVerificationSlashAmount; // millionths of the transcoder's own bond
        uint256 missedVerificationSlashAmount;
        uint256 doubleClaimSegmentSlashAmount;
        uint256 finderFee; // millionths of the penalty paid to the finder
    }

    uint256 public immutable verificationRate;
    uint256 public immutable verificationPeriod;
    uint256 public immutable verificationSlashingPeriod;
    uint256 public immutable failedVerificationSlashAmount;
    uint256 public immutable missedVerificationSlashAmount;
    uint256 public immutable doubleClaimSegmentSlashAmount;
    uint256 public immutable finderFee;

    enum ClaimStatus {
        None,
        Pending,
        Slashed,
        Complete
    }

    /// @dev packed so that a job's first claim only updates slots job() already made non-zero
    struct Job {
        string streamId;
        string transcodingOptions; // concatenated 8-hex-character profile IDs
        address broadcasterAddress;
        uint64 creationRound;
        uint32 numProfiles;
        address transcoderAddress; // set by the first claim (election)
        uint64 creationBlock;
        uint32 numClaims;
        uint64 endBlock;
        uint192 pricePerSegment; // the elected transcoder's price in the creation round (<= maxPricePerSegment)
        uint128 maxPricePerSegment;
        uint128 escrow; // <= the broadcasters' deposits, which are ETH amounts
    }

    struct Claim {
        uint64 firstSegment;
        uint64 lastSegment;
        uint64 claimBlock;
        ClaimStatus status;
        bytes32 claimRoot;
    }

    struct Broadcaster {
        uint256 deposit;
        uint256 withdrawBlock; // deposit locked until the last job's endBlock
    }

    mapping(address => Broadcaster) public broadcasters;
    mapping(uint256 => Job) private jobs;
    uint256 public numJobs;
    mapping(uint256 => mapping(uint256 => Claim)) private claims;
    // verification requested for (job, claim, segment)
    mapping(uint256 => mapping(uint256 => mapping(uint256 => bool))) private verificationRequested;
    // verifier answered for (job, claim, segment)
    mapping(uint256 => mapping(uint256 => mapping(uint256 => bool))) private verificationAnswered;

    event Deposit(address indexed broadcaster, uint256 amount);
    event Withdraw(address indexed broadcaster, uint256 amount);
    event NewJob(
        address indexed broadcaster,
        uint256 indexed jobId,
        string streamId,
        string transcodingOptions,
        uint256 maxPricePerSegment,
        uint256 creationBlock
    );
    event NewClaim(address indexed transcoder, uint256 indexed jobId, uint256 indexed claimId);
    event Verify(address indexed transcoder, uint256 indexed jobId, uint256 indexed claimId, uint256 segmentNumber);
    event PassedVerification(address indexed transcoder, uint256 indexed jobId, uint256 indexed claimId, uint256 segmentNumber);
    event FailedVerification(address indexed transcoder, uint256 indexed jobId, uint256 indexed claimId, uint256 segmentNumber);
    event DistributeFees(address indexed transcoder, uint256 indexed jobId, uint256 indexed claimId, uint256 fees);
    event ClaimSlashed(uint256 indexed jobId, uint256 indexed claimId, address finder, uint256 refund);

    error InvalidParameter();
    error RoundNotInitialized();
    error InvalidStreamId();
    error InvalidTranscodingOptions();
    error InvalidEndBlock(uint256 endBlock);
    error InvalidSegmentRange(uint256 first, uint256 last);
    error NoSuchJob(uint256 jobId);
    error NoSuchClaim(uint256 jobId, uint256 claimId);
    error JobInactive(uint256 endBlock);
    error ElectionWindowOver(uint256 creationBlock);
    error ElectionTooEarly(uint256 creationBlock);
    error NoEligibleTranscoder();
    error NotElected(address elected);
    error NotJobTranscoder();
    error InsufficientDeposit(uint256 deposit, uint256 fees);
    error DepositLocked(uint256 withdrawBlock);
    error NothingToWithdraw();
    error ClaimNotPending(uint256 claimId);
    error NotInVerificationPeriod();
    error NotInSlashingPeriod();
    error SlashingPeriodNotOver(uint256 endBlock);
    error SegmentNotInClaim(uint256 segmentNumber);
    error SegmentNotChallenged(uint256 segmentNumber);
    error AlreadyVerified(uint256 segmentNumber);
    error NotVerificationRequested(uint256 segmentNumber);
    error AlreadyAnswered(uint256 segmentNumber);
    error InvalidBroadcasterSignature(address recovered);
    error InvalidMerkleProof();
    error SameClaim();
    error VerifierFeeTooLow(uint256 price);
    error InvalidMaxPrice(uint256 maxPricePerSegment);

    constructor(Controller controller_, Params memory p) Manager(controller_) {
        // challenges and missed-verification slashes need blockhash(claimBlock + 1): keep both windows inside
        // the 256 blocks the EVM remembers
        if (
            p.verificationRate == 0 || p.verificationPeriod == 0 || p.verificationSlashingPeriod == 0
                || p.verificationPeriod + p.verificationSlashingPeriod > 255
                || p.failedVerificationSlashAmount > PERC_DIVISOR || p.missedVerificationSlashAmount > PERC_DIVISOR
                || p.doubleClaimSegmentSlashAmount > PERC_DIVISOR || p.finderFee > PERC_DIVISOR
        ) revert InvalidParameter();
        verificationRate = p.verificationRate;
        verificationPeriod = p.verificationPeriod;
        verificationSlashingPeriod = p.verificationSlashingPeriod;
        failedVerificationSlashAmount = p.failedVerificationSlashAmount;
        missedVerificationSlashAmount = p.missedVerificationSlashAmount;
        doubleClaimSegmentSlashAmount = p.doubleClaimSegmentSlashAmount;
        finderFee = p.finderFee;
    }

    // ------------------------------------------------------------------ broadcasters

    function deposit() external payable whenSystemNotPaused {
        broadcasters[msg.sender].deposit += msg.value;
        IMinter(_contract(MINTER)).depositETH{value: msg.value}();
        emit Deposit(msg.sender, msg.value);
    }

    /// @notice withdraw the whole unescrowed deposit, once the broadcaster's last job has ended.
    function withdraw() external whenSystemNotPaused {
        Broadcaster storage b = broadcasters[msg.sender];
        if (block.number < b.withdrawBlock) revert DepositLocked(b.withdrawBlock);
        uint256 amount = b.deposit;
        if (amount == 0) revert NothingToWithdraw();
        b.deposit = 0;
        IMinter(_contract(MINTER)).trustedWithdrawETH(payable(msg.sender), amount);
        emit Withdraw(msg.sender, amount);
    }

    // ------------------------------------------------------------------ jobs and claims

    /// @param transcodingOptions concatenated profile IDs, 8 lowercase or uppercase hex characters each, in the
    /// canonical rendition order (the order of transcodedDataHash).
    function job(string calldata streamId, string calldata transcodingOptions, uint256 maxPricePerSegment, uint256 endBlock)
        external
        whenSystemNotPaused
        returns (uint256 jobId)
    {
        IRoundsManager rm = IRoundsManager(_contract(ROUNDS_MANAGER));
        if (!rm.currentRoundInitialized()) revert RoundNotInitialized();
        if (bytes(streamId).length == 0) revert InvalidStreamId();
        if (!validTranscodingOptions(transcodingOptions)) revert InvalidTranscodingOptions();
        if (endBlock <= block.number || endBlock > type(uint64).max) revert InvalidEndBlock(endBlock);
        if (maxPricePerSegment > type(uint128).max) revert InvalidMaxPrice(maxPricePerSegment);
        jobId = numJobs++;
        Job storage j = jobs[jobId];
        j.streamId = streamId;
        j.transcodingOptions = transcodingOptions;
        // forge-lint: disable-next-line(unsafe-typecast)
        j.maxPricePerSegment = uint128(maxPricePerSegment); // checked above
        j.broadcasterAddress = msg.sender;
        j.creationRound = uint64(rm.currentRound());
        j.creationBlock = uint64(block.number);
        // forge-lint: disable-next-line(unsafe-typecast)
        j.endBlock = uint64(endBlock); // checked <= type(uint64).max above
        // forge-lint: disable-next-line(unsafe-typecast)
        j.numProfiles = uint32(bytes(transcodingOptions).length / 8); // calldata cannot hold 2^35 bytes
        Broadcaster storage b = broadcasters[msg.sender];
        if (endBlock > b.withdrawBlock) b.withdrawBlock = endBlock;
        emit NewJob(msg.sender, jobId, streamId, transcodingOptions, maxPricePerSegment, block.number);
    }

    /// @notice claim segments [segmentRange[0], segmentRange[1]] with the Merkle root of their receipts. The
    /// first claim of a job elects its transcoder (the caller must be the one elected) and must come within
    /// 256 blocks of the job's creation. Escrows segments x profiles x price from the broadcaster's deposit.
    function claimWork(uint256 jobId, uint256[2] calldata segmentRange, bytes32 claimRoot)
        external
        whenSystemNotPaused
        returns (uint256 claimId)
    {
        Job storage j = _job(jobId);
        if (block.number >= j.endBlock) revert JobInactive(j.endBlock);
        if (segmentRange[0] > segmentRange[1] || segmentRange[1] > type(uint64).max) {
            revert InvalidSegmentRange(segmentRange[0], segmentRange[1]);
        }
        address t = j.transcoderAddress;
        uint256 price;
        if (t == address(0)) {
            // the seed is the creation block's hash: known from the next block on, for 256 blocks
            if (block.number <= j.creationBlock) revert ElectionTooEarly(j.creationBlock);
            if (block.number > uint256(j.creationBlock) + 256) revert ElectionWindowOver(j.creationBlock);
            bytes32 seed = blockhash(j.creationBlock);
            IBondingManager bm = IBondingManager(_contract(BONDING_MANAGER));
            (t, price) = bm.electActiveTranscoder(j.maxPricePerSegment, seed, j.creationRound);
            if (t == address(0)) revert NoEligibleTranscoder();
            if (t != msg.sender) revert NotElected(t);
            j.transcoderAddress = t;
            // forge-lint: disable-next-line(unsafe-typecast)
            j.pricePerSegment = uint192(price); // price <= maxPricePerSegment < 2^128
        } else {
            if (t != msg.sender) revert NotJobTranscoder();
            price = j.pricePerSegment;
        }
        uint256 fees = (segmentRange[1] - segmentRange[0] + 1) * j.numProfiles * price;
        Broadcaster storage b = broadcasters[j.broadcasterAddress];
        if (b.deposit < fees) revert InsufficientDeposit(b.deposit, fees);
        b.deposit -= fees;
        // forge-lint: disable-next-line(unsafe-typecast)
        j.escrow += uint128(fees); // fees <= deposit, an ETH amount
        claimId = j.numClaims++;
        claims[jobId][claimId] = Claim({
            firstSegment: uint64(segmentRange[0]),
            lastSegment: uint64(segmentRange[1]),
            claimBlock: uint64(block.number),
            status: ClaimStatus.Pending,
            claimRoot: claimRoot
        });
        emit NewClaim(t, jobId, claimId);
    }

    /// @notice submit a challenged segment for verification (by the job's transcoder, inside the claim's
    /// verification window). Checks the challenge rule, the broadcaster's EIP-191 signature over the segment
    /// hash and the receipt's Merkle proof against the claim root, then asks the Verifier; msg.value pays it.
    function verify(
        uint256 jobId,
        uint256 claimId,
        uint256 segmentNumber,
        string calldata dataStorageHash,
        bytes32[2] calldata dataHashes,
        bytes calldata broadcasterSig,
        bytes calldata proof
    ) external payable whenSystemNotPaused {
        Job storage j = _job(jobId);
        if (msg.sender != j.transcoderAddress) revert NotJobTranscoder();
        Claim storage c = _pendingClaim(jobId, claimId);
        if (block.number >= uint256(c.claimBlock) + verificationPeriod) revert NotInVerificationPeriod();
        _checkChallenged(c, segmentNumber);
        if (verificationRequested[jobId][claimId][segmentNumber]) revert AlreadyVerified(segmentNumber);
        _checkReceipt(j, c, segmentNumber, dataHashes, broadcasterSig, proof);
        verificationRequested[jobId][claimId][segmentNumber] = true;
        _requestVerification(jobId, claimId, segmentNumber, dataStorageHash, dataHashes);
    }

    function _requestVerification(
        uint256 jobId,
        uint256 claimId,
        uint256 segmentNumber,
        string calldata dataStorageHash,
        bytes32[2] calldata dataHashes
    ) internal {
        IVerifier v = IVerifier(_contract(VERIFIER));
        uint256 vprice = v.getPrice();
        if (msg.value < vprice) revert VerifierFeeTooLow(vprice);
        v.verify{value: msg.value}(jobId, claimId, segmentNumber, jobs[jobId].transcodingOptions, dataStorageHash, dataHashes);
        emit Verify(msg.sender, jobId, claimId, segmentNumber);
    }

    /// @notice the Verifier's answer. A failure refunds the claim's escrow to the broadcaster and slashes the
    /// transcoder by failedVerificationSlashAmount (only the slash when the fees were already distributed).
    function receiveVerification(uint256 jobId, uint256 claimId, uint256 segmentNumber, bool result)
        external
        onlyContract(VERIFIER)
        whenSystemNotPaused
    {
        Job storage j = _job(jobId);
        if (!verificationRequested[jobId][claimId][segmentNumber]) revert NotVerificationRequested(segmentNumber);
        if (verificationAnswered[jobId][claimId][segmentNumber]) revert AlreadyAnswered(segmentNumber);
        verificationAnswered[jobId][claimId][segmentNumber] = true;
        if (result) {
            emit PassedVerification(j.transcoderAddress, jobId, claimId, segmentNumber);
            return;
        }
        emit FailedVerification(j.transcoderAddress, jobId, claimId, segmentNumber);
        ClaimStatus status = claims[jobId][claimId].status;
        if (status == ClaimStatus.Pending) {
            _slashClaim(j, jobId, claimId, address(0), failedVerificationSlashAmount);
        } else if (status == ClaimStatus.Complete) {
            // the answer came after the fees were distributed: nothing left to refund, the slash still applies
            IBondingManager(_contract(BONDING_MANAGER)).slashTranscoder(
                j.transcoderAddress, address(0), failedVerificationSlashAmount, 0
            );
        }
    }

    /// @notice anyone, during a claim's slashing window: slash a challenged segment that was never submitted for
    /// verification. The caller earns finderFee of the penalty.
    function missedVerificationSlash(uint256 jobId, uint256 claimId, uint256 segmentNumber)
        external
        whenSystemNotPaused
    {
        Job storage j = _job(jobId);
        Claim storage c = _pendingClaim(jobId, claimId);
        uint256 endVerification = uint256(c.claimBlock) + verificationPeriod;
        if (block.number < endVerification || block.number >= endVerification + verificationSlashingPeriod) {
            revert NotInSlashingPeriod();
        }
        _checkChallenged(c, segmentNumber);
        if (verificationRequested[jobId][claimId][segmentNumber]) revert AlreadyVerified(segmentNumber);
        _slashClaim(j, jobId, claimId, msg.sender, missedVerificationSlashAmount);
    }

    /// @notice anyone: the same segment appears in two different pending-or-settled claims of a job. Slashes
    /// the transcoder, refunds claimId2 and pays the caller finderFee. Unlike the 2018 contracts, claimId1 ==
    /// claimId2 is refused (one claim passed twice is not a double claim).
    function doubleClaimSegmentSlash(uint256 jobId, uint256 claimId1, uint256 claimId2, uint256 segmentNumber)
        external
        whenSystemNotPaused
    {
        if (claimId1 == claimId2) revert SameClaim();
        Job storage j = _job(jobId);
        if (claimId1 >= j.numClaims) revert NoSuchClaim(jobId, claimId1);
        Claim storage c1 = claims[jobId][claimId1];
        if (c1.status == ClaimStatus.Slashed) revert ClaimNotPending(claimId1);
        Claim storage c2 = _pendingClaim(jobId, claimId2);
        if (segmentNumber < c1.firstSegment || segmentNumber > c1.lastSegment) revert SegmentNotInClaim(segmentNumber);
        if (segmentNumber < c2.firstSegment || segmentNumber > c2.lastSegment) revert SegmentNotInClaim(segmentNumber);
        _slashClaim(j, jobId, claimId2, msg.sender, doubleClaimSegmentSlashAmount);
    }

    /// @notice the job's transcoder, after a claim's slashing window: move its escrow to the transcoder's
    /// earnings (BondingManager).
    function distributeFees(uint256 jobId, uint256 claimId) public whenSystemNotPaused {
        Job storage j = _job(jobId);
        if (msg.sender != j.transcoderAddress) revert NotJobTranscoder();
        Claim storage c = _pendingClaim(jobId, claimId);
        uint256 end = uint256(c.claimBlock) + verificationPeriod + verificationSlashingPeriod;
        if (block.number < end) revert SlashingPeriodNotOver(end);
        uint256 fees = _claimFees(j, c);
        // forge-lint: disable-next-line(unsafe-typecast)
        j.escrow -= uint128(fees); // fees <= escrow
        c.status = ClaimStatus.Complete;
        IBondingManager(_contract(BONDING_MANAGER)).updateTranscoderWithFees(j.transcoderAddress, fees, j.creationRound);
        emit DistributeFees(j.transcoderAddress, jobId, claimId, fees);
    }

    function batchDistributeFees(uint256 jobId, uint256[] calldata claimIds) external {
        for (uint256 i = 0; i < claimIds.length; i++) {
            distributeFees(jobId, claimIds[i]);
        }
    }

    // ------------------------------------------------------------------ views

    function getJob(uint256 jobId)
        external
        view
        returns (
            string memory streamId,
            string memory transcodingOptions,
            uint256 maxPricePerSegment,
            address broadcasterAddress,
            address transcoderAddress,
            uint256 creationRound,
            uint256 creationBlock,
            uint256 endBlock,
            uint256 pricePerSegment,
            uint256 escrow,
            uint256 totalClaims
        )
    {
        Job storage j = _job(jobId);
        return (
            j.streamId,
            j.transcodingOptions,
            j.maxPricePerSegment,
            j.broadcasterAddress,
            j.transcoderAddress,
            j.creationRound,
            j.creationBlock,
            j.endBlock,
            j.pricePerSegment,
            j.escrow,
            j.numClaims
        );
    }

    function getClaim(uint256 jobId, uint256 claimId)
        external
        view
        returns (
            uint256 firstSegment,
            uint256 lastSegment,
            bytes32 claimRoot,
            uint256 claimBlock,
            uint256 endVerificationBlock,
            uint256 endVerificationSlashingBlock,
            ClaimStatus status
        )
    {
        _job(jobId);
        Claim storage c = claims[jobId][claimId];
        if (c.status == ClaimStatus.None) revert NoSuchClaim(jobId, claimId);
        uint256 ev = uint256(c.claimBlock) + verificationPeriod;
        return (c.firstSegment, c.lastSegment, c.claimRoot, c.claimBlock, ev, ev + verificationSlashingPeriod, c.status);
    }

    function isVerificationRequested(uint256 jobId, uint256 claimId, uint256 segmentNumber)
        external
        view
        returns (bool requested, bool answered)
    {
        return (verificationRequested[jobId][claimId][segmentNumber], verificationAnswered[jobId][claimId][segmentNumber]);
    }

    /// @notice whether `segmentNumber` of a claim made in `claimBlock` is challenged (needs the hash of block
    /// claimBlock + 1, so from block claimBlock + 2 up to claimBlock + 257).
    function isChallenged(uint256 claimBlock, uint256 segmentNumber) public view returns (bool) {
        bytes32 h = IRoundsManager(_contract(ROUNDS_MANAGER)).blockHash(claimBlock + 1);
        return ProtocolHashes.challenged(claimBlock, h, segmentNumber, verificationRate);
    }

    function segmentHash(string calldata streamId, uint256 segmentNumber, bytes32 dataHash)
        external
        pure
        returns (bytes32)
    {
        return ProtocolHashes.segmentHash(streamId, segmentNumber, dataHash);
    }

    function receiptHash(
        string calldata streamId,
        uint256 segmentNumber,
        bytes32 dataHash,
        bytes32 transcodedDataHash,
        bytes calldata broadcasterSig
    ) external pure returns (bytes32) {
        return ProtocolHashes.receiptHash(streamId, segmentNumber, dataHash, transcodedDataHash, broadcasterSig);
    }

    function verifyReceiptProof(bytes calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return ProtocolHashes.verifyProof(proof, root, leaf);
    }

    /// @notice options are non-empty and made of 8-hex-character profile IDs.
    function validTranscodingOptions(string calldata options) public pure returns (bool) {
        bytes calldata o = bytes(options);
        if (o.length == 0 || o.length % 8 != 0) return false;
        for (uint256 i = 0; i < o.length; i++) {
            bytes1 ch = o[i];
            bool hex_ = (ch >= "0" && ch <= "9") || (ch >= "a" && ch <= "f") || (ch >= "A" && ch <= "F");
            if (!hex_) return false;
        }
        return true;
    }

    // ------------------------------------------------------------------ internals

    function _job(uint256 jobId) internal view returns (Job storage j) {
        if (jobId >= numJobs) revert NoSuchJob(jobId);
        return jobs[jobId];
    }

    function _pendingClaim(uint256 jobId, uint256 claimId) internal view returns (Claim storage c) {
        c = claims[jobId][claimId];
        if (c.status == ClaimStatus.None) revert NoSuchClaim(jobId, claimId);
        if (c.status != ClaimStatus.Pending) revert ClaimNotPending(claimId);
    }

    function _checkChallenged(Claim storage c, uint256 segmentNumber) internal view {
        if (segmentNumber < c.firstSegment || segmentNumber > c.lastSegment) revert SegmentNotInClaim(segmentNumber);
        if (!isChallenged(c.claimBlock, segmentNumber)) revert SegmentNotChallenged(segmentNumber);
    }

    function _checkReceipt(
        Job storage j,
        Claim storage c,
        uint256 segmentNumber,
        bytes32[2] calldata dataHashes,
        bytes calldata broadcasterSig,
        bytes calldata proof
    ) internal view {
        string memory streamId = j.streamId;
        bytes32 digest = ProtocolHashes.ethSignedMessageHash(ProtocolHashes.segmentHash(streamId, segmentNumber, dataHashes[0]));
        address signer = ProtocolHashes.recover(digest, broadcasterSig);
        if (signer != j.broadcasterAddress || signer == address(0)) revert InvalidBroadcasterSignature(signer);
        bytes32 leaf = ProtocolHashes.receiptHash(streamId, segmentNumber, dataHashes[0], dataHashes[1], broadcasterSig);
        if (!ProtocolHashes.verifyProof(proof, c.claimRoot, leaf)) revert InvalidMerkleProof();
    }

    function _claimFees(Job storage j, Claim storage c) internal view returns (uint256) {
        return (uint256(c.lastSegment) - c.firstSegment + 1) * j.numProfiles * j.pricePerSegment;
    }

    function _slashClaim(Job storage j, uint256 jobId, uint256 claimId, address finder, uint256 slashAmount) internal {
        Claim storage c = claims[jobId][claimId];
        uint256 refund = _claimFees(j, c);
        c.status = ClaimStatus.Slashed;
        // forge-lint: disable-next-line(unsafe-typecast)
        j.escrow -= uint128(refund); // refund <= escrow
        broadcasters[j.broadcasterAddress].deposit += refund;
        IBondingManager(_contract(BONDING_MANAGER)).slashTranscoder(
            j.transcoderAddress, finder, slashAmount, finder == address(0) ? 0 : finderFee
        );
        emit ClaimSlashed(jobId, claimId, finder, refund);
    }
}
