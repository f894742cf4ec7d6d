// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "./Controller.sol";
import {Manager} from "./Manager.sol";
import {IVerifier, IJobsManager} from "./Interfaces.sol";

/// @notice Trusted-solver verifier: the JobsManager's requests become `VerifyRequest` events; a registered
/// solver transcodes the segment itself and answers `callback` with a verdict on the claimed
/// transcodedDataHash and its evidence. Two comparison modes:
/// - bit-exact (deterministic software encodes): the verdict must be `computedHash == claimedHash`, which the
///   contract checks;
/// - fidelity (hardware and other non-deterministic encoders, whose output never matches a re-encode byte for
///   byte): the solver measures the claimed renditions against the input and the profiles; `score` is the
///   deciding per-frame margin (scaled by 1e3; below 0 fails) and `reportHash` the hash of its full report.
/// Replaceable behind IVerifier.
contract Verifier is Manager, IVerifier {
    uint8 public constant MODE_BIT_EXACT = 0;
    uint8 public constant MODE_FIDELITY = 1;

    struct Request {
        uint256 jobId;
        uint256 claimId;
        uint256 segmentNumber;
        bytes32 commitHash;
        bool pending;
    }

    mapping(address => bool) public isSolver;
    uint256 public numSolvers;
    mapping(uint256 => Request) private requests;
    uint256 public numRequests;

    event SolverAdded(address indexed solver);
    event SolverRemoved(address indexed solver);
    event VerifyRequest(
        uint256 indexed requestId,
        uint256 indexed jobId,
        uint256 indexed claimId,
        uint256 segmentNumber,
        string transcodingOptions,
        string dataStorageHash,
        bytes32 dataHash,
        bytes32 transcodedDataHash
    );
    event Callback(
        uint256 indexed requestId,
        uint256 indexed jobId,
        uint256 indexed claimId,
        uint256 segmentNumber,
        bool result,
        bytes32 claimedHash,
        bytes32 computedHash,
        uint8 mode,
        int64 score,
        bytes32 reportHash
    );

    error NotSolver();
    error AlreadySolver();
    error RequestNotPending(uint256 requestId);
    error WrongClaimedHash(bytes32 claimed);
    error InvalidMode(uint8 mode);
    error InconsistentVerdict();

    constructor(Controller controller_, address[] memory solvers) Manager(controller_) {
        for (uint256 i = 0; i < solvers.length; i++) {
            _addSolver(solvers[i]);
        }
    }

    function addSolver(address solver) external onlyControllerOwner {
        _addSolver(solver);
    }

    function removeSolver(address solver) external onlyControllerOwner {
        if (!isSolver[solver]) revert NotSolver();
        isSolver[solver] = false;
        numSolvers--;
        emit SolverRemoved(solver);
    }

    function getPrice() external pure returns (uint256) {
        return 0;
    }

    function verify(
        uint256 jobId,
        uint256 claimId,
        uint256 segmentNumber,
        string calldata transcodingOptions,
        string calldata dataStorageHash,
        bytes32[2] calldata dataHashes
    ) external payable onlyContract(JOBS_MANAGER) whenSystemNotPaused {
        uint256 id = numRequests++;
        requests[id] = Request(jobId, claimId, segmentNumber, dataHashes[1], true);
        emit VerifyRequest(id, jobId, claimId, segmentNumber, transcodingOptions, dataStorageHash, dataHashes[0], dataHashes[1]);
    }

    /// @notice a solver's verdict on request `requestId`: `claimedHash` must be the transcodedDataHash the
    /// transcoder claimed (the solver answers for what it looked at); `computedHash` is the solver's own
    /// transcodedDataHash of its re-encode; `mode`, `score` and `reportHash` as in the contract comment.
    function callback(
        uint256 requestId,
        bytes32 claimedHash,
        bool passed,
        bytes32 computedHash,
        uint8 mode,
        int64 score,
        bytes32 reportHash
    ) external whenSystemNotPaused {
        if (!isSolver[msg.sender]) revert NotSolver();
        Request storage q = requests[requestId];
        if (!q.pending) revert RequestNotPending(requestId);
        if (claimedHash != q.commitHash) revert WrongClaimedHash(claimedHash);
        if (mode > MODE_FIDELITY) revert InvalidMode(mode);
        if (mode == MODE_BIT_EXACT && passed != (computedHash == claimedHash)) revert InconsistentVerdict();
        q.pending = false;
        emit Callback(
            requestId, q.jobId, q.claimId, q.segmentNumber, passed, claimedHash, computedHash, mode, score, reportHash
        );
        IJobsManager(_contract(JOBS_MANAGER)).receiveVerification(q.jobId, q.claimId, q.segmentNumber, passed);
    }

    function getRequest(uint256 requestId)
        external
        view
        returns (uint256 jobId, uint256 claimId, uint256 segmentNumber, bytes32 commitHash, bool pending)
    {
        Request storage q = requests[requestId];
        return (q.jobId, q.claimId, q.segmentNumber, q.commitHash, q.pending);
    }

    function _addSolver(address solver) internal {
        if (isSolver[solver]) revert AlreadySolver();
        isSolver[solver] = true;
        numSolvers++;
        emit SolverAdded(solver);
    }
}
