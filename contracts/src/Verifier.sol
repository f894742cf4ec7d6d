// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "./Controller.sol";
import {Manager} from "./Manager.sol";
import {IVerifier, IJobsManager} from "./Interfaces.sol";

/// @notice Trusted-solver verifier: the JobsManager's requests become `VerifyRequest` events; a registered
/// solver transcodes the segment itself and answers `callback(requestId, hash)` with the transcodedDataHash
/// it computed; the segment passes when that equals the transcoder's. Replaceable behind IVerifier.
contract Verifier is Manager, IVerifier {
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
    event Callback(uint256 indexed requestId, uint256 indexed jobId, uint256 indexed claimId, uint256 segmentNumber, bool result);

    error NotSolver();
    error AlreadySolver();
    error RequestNotPending(uint256 requestId);

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

    /// @notice a solver's answer: `result` is the transcodedDataHash the solver computed.
    function callback(uint256 requestId, bytes32 result) external whenSystemNotPaused {
        if (!isSolver[msg.sender]) revert NotSolver();
        Request storage q = requests[requestId];
        if (!q.pending) revert RequestNotPending(requestId);
        q.pending = false;
        bool ok = result == q.commitHash;
        emit Callback(requestId, q.jobId, q.claimId, q.segmentNumber, ok);
        IJobsManager(_contract(JOBS_MANAGER)).receiveVerification(q.jobId, q.claimId, q.segmentNumber, ok);
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
