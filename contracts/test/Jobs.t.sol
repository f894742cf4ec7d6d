// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {Manager} from "../src/Manager.sol";
import {JobsManager} from "../src/JobsManager.sol";
import {BondingManager} from "../src/BondingManager.sol";
import {RoundsManager} from "../src/RoundsManager.sol";
import {Verifier} from "../src/Verifier.sol";
import {ProtocolHashes} from "../src/ProtocolHashes.sol";

contract JobsTest is Fixture {
    uint256 constant PRICE = 10 gwei;
    uint256 constant PROFILES = 3;
    uint256 constant WINDOWS = 60; // verificationPeriod + verificationSlashingPeriod of the dev config

    function startJob() internal returns (uint256 jobId) {
        register(t1, 1000 ether, 0, 500_000, PRICE);
        depositFor(broadcaster, 1 ether);
        nextRound();
        vm.prank(broadcaster);
        jobId = jobs.job(STREAM, OPTIONS, PRICE, block.number + 1000);
        vm.roll(block.number + 1);
    }

    function claim(uint256 jobId, uint256 first, uint256 last) internal returns (uint256 claimId, bytes32[] memory leaves) {
        leaves = receipts(STREAM, first, last);
        vm.prank(t1);
        claimId = jobs.claimWork(jobId, [first, last], merkleRoot(leaves));
    }

    function claimBlockOf(uint256 jobId, uint256 claimId) internal view returns (uint256 b) {
        (,,, b,,,) = jobs.getClaim(jobId, claimId);
    }

    function statusOf(uint256 jobId, uint256 claimId) internal view returns (JobsManager.ClaimStatus s) {
        (,,,,,, s) = jobs.getClaim(jobId, claimId);
    }

    function verifySeg(uint256 jobId, uint256 claimId, bytes32[] memory leaves, uint256 first, uint256 seg) internal {
        vm.prank(t1);
        jobs.verify(jobId, claimId, seg, "ipfs://seg", [dataHash(seg), tdHash(seg)], sigFor(BKEY, STREAM, seg), merkleProof(leaves, seg - first));
    }

    function selfBond(address t) internal view returns (uint256 b) {
        (b,,,,,,) = bonding.getDelegator(t);
    }

    // ------------------------------------------------------------------ deposits and jobs

    function test_depositAndWithdrawAfterLastJob() public {
        depositFor(broadcaster, 1 ether);
        (uint256 dep,) = jobs.broadcasters(broadcaster);
        assertEq(dep, 1 ether, "deposit");
        assertEq(address(minter).balance, 1 ether, "Minter holds the ETH");
        vm.prank(broadcaster);
        uint256 end = block.number + 50;
        jobs.job(STREAM, OPTIONS, PRICE, end);
        vm.prank(broadcaster);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.DepositLocked.selector, end));
        jobs.withdraw();
        vm.roll(end);
        vm.prank(broadcaster);
        jobs.withdraw();
        assertEq(broadcaster.balance, 1 ether, "paid back");
        vm.prank(broadcaster);
        vm.expectRevert(JobsManager.NothingToWithdraw.selector);
        jobs.withdraw();
    }

    function test_jobValidation() public {
        vm.startPrank(broadcaster);
        vm.expectRevert(JobsManager.InvalidStreamId.selector);
        jobs.job("", OPTIONS, 1, block.number + 10);
        vm.expectRevert(JobsManager.InvalidTranscodingOptions.selector);
        jobs.job(STREAM, "", 1, block.number + 10);
        vm.expectRevert(JobsManager.InvalidTranscodingOptions.selector);
        jobs.job(STREAM, "49d54ea", 1, block.number + 10);
        vm.expectRevert(JobsManager.InvalidTranscodingOptions.selector);
        jobs.job(STREAM, "49d54eaz", 1, block.number + 10);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.InvalidEndBlock.selector, block.number));
        jobs.job(STREAM, OPTIONS, 1, block.number);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.InvalidMaxPrice.selector, uint256(type(uint128).max) + 1));
        jobs.job(STREAM, OPTIONS, uint256(type(uint128).max) + 1, block.number + 10);
        uint256 id = jobs.job(STREAM, "A7AC137A", 7, block.number + 10);
        vm.stopPrank();
        (string memory sid, string memory opts, uint256 maxPrice, address b,, uint256 cr, uint256 cb, uint256 eb,,,) = jobs.getJob(id);
        assertEq(keccak256(bytes(sid)), keccak256(bytes(STREAM)), "stream id");
        assertEq(keccak256(bytes(opts)), keccak256("A7AC137A"), "options");
        assertEq(maxPrice, 7, "max price");
        assertEq(b, broadcaster, "broadcaster");
        assertEq(cr, rounds.currentRound(), "creation round");
        assertEq(cb, block.number, "creation block");
        assertEq(eb, block.number + 10, "end block");
        vm.expectRevert(abi.encodeWithSelector(JobsManager.NoSuchJob.selector, 1));
        jobs.getJob(1);
        vm.roll(block.number + cfg.roundLength);
        vm.prank(broadcaster);
        vm.expectRevert(JobsManager.RoundNotInitialized.selector);
        jobs.job(STREAM, OPTIONS, 1, block.number + 10);
    }

    // ------------------------------------------------------------------ claims

    function test_claimWorkElectsAndEscrows() public {
        uint256 jobId = startJob();
        (uint256 claimId,) = claim(jobId, 0, 9);
        assertEq(claimId, 0, "first claim");
        (,,,, address t,,,, uint256 price, uint256 escrow, uint256 n) = jobs.getJob(jobId);
        assertEq(t, t1, "elected");
        assertEq(price, PRICE, "price fixed at election");
        assertEq(escrow, 10 * PROFILES * PRICE, "segments x profiles x price");
        assertEq(n, 1, "one claim");
        (uint256 dep,) = jobs.broadcasters(broadcaster);
        assertEq(dep, 1 ether - escrow, "taken from the deposit");
        (uint256 first, uint256 last,, uint256 cb, uint256 ev, uint256 es, JobsManager.ClaimStatus st) = jobs.getClaim(jobId, 0);
        assertEq(first, 0, "first");
        assertEq(last, 9, "last");
        assertEq(ev, cb + cfg.jobs.verificationPeriod, "verification window");
        assertEq(es, ev + cfg.jobs.verificationSlashingPeriod, "slashing window");
        assertEq(uint256(st), uint256(JobsManager.ClaimStatus.Pending), "pending");
        vm.prank(t2);
        vm.expectRevert(JobsManager.NotJobTranscoder.selector);
        jobs.claimWork(jobId, [uint256(10), uint256(11)], bytes32(0));
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.InvalidSegmentRange.selector, 5, 4));
        jobs.claimWork(jobId, [uint256(5), uint256(4)], bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(JobsManager.NoSuchClaim.selector, jobId, 1));
        jobs.getClaim(jobId, 1);
    }

    function test_claimWorkOnlyByElected() public {
        register(t2, 1000 ether, 0, 0, PRICE);
        uint256 jobId = startJob();
        (,,, address b,,,uint256 cb,,,,) = jobs.getJob(jobId);
        b;
        address elected = elect(PRICE, rounds.blockHash(cb), rounds.currentRound());
        address other = elected == t1 ? t2 : t1;
        vm.prank(other);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.NotElected.selector, elected));
        jobs.claimWork(jobId, [uint256(0), uint256(0)], bytes32(0));
        vm.prank(elected);
        jobs.claimWork(jobId, [uint256(0), uint256(0)], bytes32(0));
    }

    function test_claimWorkNoEligibleTranscoder() public {
        register(t1, 1000 ether, 0, 0, PRICE);
        depositFor(broadcaster, 1 ether);
        nextRound();
        vm.prank(broadcaster);
        uint256 jobId = jobs.job(STREAM, OPTIONS, PRICE - 1, block.number + 100);
        vm.roll(block.number + 1);
        vm.prank(t1);
        vm.expectRevert(JobsManager.NoEligibleTranscoder.selector);
        jobs.claimWork(jobId, [uint256(0), uint256(1)], bytes32(0));
    }

    function test_claimWorkWindows() public {
        uint256 jobId = startJob();
        (,,,,,, uint256 cb,,,,) = jobs.getJob(jobId);
        vm.roll(cb);
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.ElectionTooEarly.selector, cb));
        jobs.claimWork(jobId, [uint256(0), uint256(1)], bytes32(0));
        vm.roll(cb + 257);
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.ElectionWindowOver.selector, cb));
        jobs.claimWork(jobId, [uint256(0), uint256(1)], bytes32(0));
        vm.roll(cb + 1000);
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.JobInactive.selector, cb + 1000));
        jobs.claimWork(jobId, [uint256(0), uint256(1)], bytes32(0));
    }

    function test_claimWorkInsufficientDeposit() public {
        uint256 jobId = startJob();
        uint256 fees = 100_000_000 * PROFILES * PRICE; // 3 ETH > 1 ETH deposit
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.InsufficientDeposit.selector, 1 ether, fees));
        jobs.claimWork(jobId, [uint256(0), uint256(99_999_999)], bytes32(0));
    }

    // ------------------------------------------------------------------ verification

    function test_verifyPassing() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        verifySeg(jobId, claimId, leaves, 0, seg);
        (bool requested, bool answered) = jobs.isVerificationRequested(jobId, claimId, seg);
        assertTrue(requested && !answered, "requested");
        (uint256 rj, uint256 rc, uint256 rs, bytes32 commit, bool pending) = verifier.getRequest(0);
        assertTrue(rj == jobId && rc == claimId && rs == seg && pending, "request stored");
        assertEq(commit, tdHash(seg), "commit is the transcodedDataHash");
        vm.expectRevert(abi.encodeWithSelector(JobsManager.AlreadyVerified.selector, seg));
        verifySeg(jobId, claimId, leaves, 0, seg);
        uint256 stakeBefore = selfBond(t1);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(Verifier.WrongClaimedHash.selector, bytes32(uint256(1))));
        verifier.callback(0, bytes32(uint256(1)), true, tdHash(seg), 0, 0, bytes32(0));
        vm.prank(solver);
        vm.expectRevert(Verifier.InconsistentVerdict.selector);
        verifier.callback(0, tdHash(seg), true, keccak256("re-encode differs"), 0, 0, bytes32(0));
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(Verifier.InvalidMode.selector, 2));
        verifier.callback(0, tdHash(seg), true, tdHash(seg), 2, 0, bytes32(0));
        vm.prank(solver);
        verifier.callback(0, tdHash(seg), true, tdHash(seg), 0, 0, bytes32(0));
        (, answered) = jobs.isVerificationRequested(jobId, claimId, seg);
        assertTrue(answered, "answered");
        assertEq(selfBond(t1), stakeBefore, "not slashed");
        assertEq(uint256(statusOf(jobId, claimId)), uint256(JobsManager.ClaimStatus.Pending), "still pending");
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(Verifier.RequestNotPending.selector, 0));
        verifier.callback(0, tdHash(seg), true, tdHash(seg), 0, 0, bytes32(0));
    }

    function test_fidelityVerdictPassesADifferentEncode() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        verifySeg(jobId, claimId, leaves, 0, seg);
        uint256 stakeBefore = selfBond(t1);
        vm.prank(solver);
        vm.expectEmit(true, true, true, true, address(verifier));
        emit Verifier.Callback(0, jobId, claimId, seg, true, tdHash(seg), keccak256("hw encode"), 1, 4200, keccak256("report"));
        verifier.callback(0, tdHash(seg), true, keccak256("hw encode"), 1, 4200, keccak256("report"));
        assertEq(selfBond(t1), stakeBefore, "a fidelity pass with another hash is not slashed");
    }

    function test_verifyFailingRefundsAndSlashes() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        verifySeg(jobId, claimId, leaves, 0, seg);
        uint256 stakeBefore = selfBond(t1);
        uint256 supplyBefore = token.totalSupply();
        vm.prank(solver);
        verifier.callback(0, tdHash(seg), false, keccak256("something else"), 0, 0, bytes32(0));
        uint256 penalty = stakeBefore * cfg.jobs.failedVerificationSlashAmount / 1e6;
        assertEq(selfBond(t1), stakeBefore - penalty, "slashed");
        assertEq(token.totalSupply(), supplyBefore - penalty, "burned");
        assertEq(uint256(statusOf(jobId, claimId)), uint256(JobsManager.ClaimStatus.Slashed), "claim slashed");
        (uint256 dep,) = jobs.broadcasters(broadcaster);
        assertEq(dep, 1 ether, "refunded");
        (,,,,,,,,, uint256 escrow,) = jobs.getJob(jobId);
        assertEq(escrow, 0, "escrow emptied");
        assertTrue(!bonding.isRegisteredTranscoder(t1), "out of the pool");
        assertTrue(!bonding.isActiveTranscoder(t1, rounds.currentRound()), "out of the active set");
        assertEq(elect(PRICE, bytes32(uint256(7)), rounds.currentRound()), address(0), "never elected again");
    }

    function test_lateFailedVerificationStillSlashes() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        verifySeg(jobId, claimId, leaves, 0, seg);
        vm.roll(cb + WINDOWS);
        vm.prank(t1);
        jobs.distributeFees(jobId, claimId);
        uint256 stakeBefore = selfBond(t1);
        vm.prank(solver);
        verifier.callback(0, tdHash(seg), false, bytes32(0), 1, -1500, keccak256("fidelity report"));
        assertEq(selfBond(t1), stakeBefore - stakeBefore * cfg.jobs.failedVerificationSlashAmount / 1e6, "slashed");
        assertEq(uint256(statusOf(jobId, claimId)), uint256(JobsManager.ClaimStatus.Complete), "fees stay paid");
        (uint256 dep,) = jobs.broadcasters(broadcaster);
        assertEq(dep, 1 ether - 16 * PROFILES * PRICE, "nothing to refund");
    }

    function test_slashMidRoundKeepsOthersRewards() public {
        register(t2, 1000 ether, 0, 0, PRICE * 2); // active, but too expensive for the job
        uint256 jobId = startJob();
        vm.prank(t1);
        bonding.reward();
        claim(jobId, 0, 9);
        claim(jobId, 9, 12);
        vm.prank(finder);
        jobs.doubleClaimSegmentSlash(jobId, 0, 1, 9);
        assertTrue(!bonding.isActiveTranscoder(t1, rounds.currentRound()), "t1 out");
        vm.prank(t2);
        bonding.reward(); // its share of the round is unchanged by t1's slash
        assertEq(minter.currentMintedTokens(), minter.currentMintableTokens(), "both halves minted, no more");
    }

    function test_verifyNotChallengedSegment() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, false);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.SegmentNotChallenged.selector, seg));
        verifySeg(jobId, claimId, leaves, 0, seg);
    }

    function test_verifyWrongProof() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        bytes memory sig = sigFor(BKEY, STREAM, seg);
        // proof of another leaf
        bytes memory wrong = merkleProof(leaves, (seg + 1) % 16);
        vm.prank(t1);
        vm.expectRevert(JobsManager.InvalidMerkleProof.selector);
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg), tdHash(seg)], sig, wrong);
        // right proof, but a transcodedDataHash other than the claimed one
        bytes memory proof = merkleProof(leaves, seg);
        vm.prank(t1);
        vm.expectRevert(JobsManager.InvalidMerkleProof.selector);
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg), keccak256("forged")], sig, proof);
        // a proof that is not a whole number of 32-byte siblings
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(ProtocolHashes.InvalidProofLength.selector, proof.length + 1));
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg), tdHash(seg)], sig, abi.encodePacked(proof, bytes1(0)));
    }

    function test_verifyWrongSignature() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        bytes memory proof = merkleProof(leaves, seg);
        bytes memory other = sigFor(0xBAD, STREAM, seg);
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.InvalidBroadcasterSignature.selector, vm.addr(0xBAD)));
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg), tdHash(seg)], other, proof);
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(ProtocolHashes.InvalidSignatureLength.selector, 64));
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg), tdHash(seg)], new bytes(64), proof);
        // the broadcaster's signature over another segment's data
        vm.prank(t1);
        vm.expectRevert();
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg + 1), tdHash(seg)], sigFor(BKEY, STREAM, seg), proof);
    }

    /// @notice (r, s, v) of a 65-byte signature
    function splitSig(bytes memory sig) internal pure returns (bytes32 r, bytes32 s, uint8 v) {
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        v = uint8(sig[64]);
    }

    function test_verifyRefusesMalleableAndBadV() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        bytes memory proof = merkleProof(leaves, seg);
        (bytes32 r, bytes32 s, uint8 v) = splitSig(sigFor(BKEY, STREAM, seg));
        // the same signature with s' = n - s and v flipped recovers the same key: refused
        uint256 n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
        bytes memory other = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.prank(t1);
        vm.expectRevert(ProtocolHashes.InvalidSignatureS.selector);
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg), tdHash(seg)], other, proof);
        other = abi.encodePacked(r, s, uint8(29));
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(ProtocolHashes.InvalidSignatureV.selector, uint8(29)));
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg), tdHash(seg)], other, proof);
        // v in {0, 1} is read as {27, 28}; the proof then fails since the leaf hashes the signature as sent
        other = abi.encodePacked(r, s, v - 27);
        vm.prank(t1);
        vm.expectRevert(JobsManager.InvalidMerkleProof.selector);
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg), tdHash(seg)], other, proof);
    }

    function test_verifyGuards() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        vm.prank(t2);
        vm.expectRevert(JobsManager.NotJobTranscoder.selector);
        jobs.verify(jobId, claimId, seg, "x", [dataHash(seg), tdHash(seg)], "", "");
        vm.expectRevert(abi.encodeWithSelector(JobsManager.SegmentNotInClaim.selector, 16));
        verifySeg(jobId, claimId, leaves, 0, 16);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.NoSuchClaim.selector, jobId, 7));
        verifySeg(jobId, 7, leaves, 0, seg);
        vm.roll(cb + cfg.jobs.verificationPeriod);
        vm.expectRevert(JobsManager.NotInVerificationPeriod.selector);
        verifySeg(jobId, claimId, leaves, 0, seg);
    }

    function test_verifierAccessControl() public {
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        jobs.receiveVerification(0, 0, 0, true);
        vm.expectRevert(abi.encodeWithSelector(Manager.Unauthorized.selector, address(this)));
        verifier.verify(0, 0, 0, OPTIONS, "x", [bytes32(0), bytes32(0)]);
        vm.expectRevert(Verifier.NotSolver.selector);
        verifier.callback(0, bytes32(0), true, bytes32(0), 0, 0, bytes32(0));
        vm.prank(d1);
        vm.expectRevert(Manager.NotControllerOwner.selector);
        verifier.addSolver(d1);
        verifier.addSolver(d1);
        assertEq(verifier.numSolvers(), 2, "two solvers");
        vm.expectRevert(Verifier.AlreadySolver.selector);
        verifier.addSolver(d1);
        verifier.removeSolver(d1);
        vm.expectRevert(Verifier.NotSolver.selector);
        verifier.removeSolver(d1);
        assertEq(verifier.getPrice(), 0, "free");
        // the verifier cannot answer what was never asked
        vm.prank(address(verifier));
        vm.expectRevert(abi.encodeWithSelector(JobsManager.NoSuchJob.selector, 0));
        jobs.receiveVerification(0, 0, 0, true);
    }

    // ------------------------------------------------------------------ slashing

    function test_missedVerificationSlash() public {
        uint256 jobId = startJob();
        (uint256 claimId, bytes32[] memory leaves) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        uint256 verified = findSegment(cb, seg + 1, 15, true);
        verifySeg(jobId, claimId, leaves, 0, verified);
        vm.prank(finder);
        vm.expectRevert(JobsManager.NotInSlashingPeriod.selector);
        jobs.missedVerificationSlash(jobId, claimId, seg);
        vm.roll(cb + cfg.jobs.verificationPeriod);
        uint256 notChallenged = findSegment(cb, 0, 15, false);
        vm.prank(finder);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.SegmentNotChallenged.selector, notChallenged));
        jobs.missedVerificationSlash(jobId, claimId, notChallenged);
        vm.prank(finder);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.AlreadyVerified.selector, verified));
        jobs.missedVerificationSlash(jobId, claimId, verified);
        uint256 stakeBefore = selfBond(t1);
        vm.prank(finder);
        jobs.missedVerificationSlash(jobId, claimId, seg);
        uint256 penalty = stakeBefore * cfg.jobs.missedVerificationSlashAmount / 1e6;
        assertEq(selfBond(t1), stakeBefore - penalty, "slashed");
        assertEq(token.balanceOf(finder), penalty * cfg.jobs.finderFee / 1e6, "finder's fee");
        (uint256 dep,) = jobs.broadcasters(broadcaster);
        assertEq(dep, 1 ether, "refunded");
        vm.prank(finder);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.ClaimNotPending.selector, claimId));
        jobs.missedVerificationSlash(jobId, claimId, seg);
    }

    function test_missedVerificationSlashAfterWindow() public {
        uint256 jobId = startJob();
        (uint256 claimId,) = claim(jobId, 0, 15);
        uint256 cb = claimBlockOf(jobId, claimId);
        vm.roll(cb + 2);
        uint256 seg = findSegment(cb, 0, 15, true);
        vm.roll(cb + cfg.jobs.verificationPeriod + cfg.jobs.verificationSlashingPeriod);
        vm.prank(finder);
        vm.expectRevert(JobsManager.NotInSlashingPeriod.selector);
        jobs.missedVerificationSlash(jobId, claimId, seg);
    }

    function test_doubleClaimSegmentSlash() public {
        uint256 jobId = startJob();
        (uint256 c0,) = claim(jobId, 0, 9);
        (uint256 c1,) = claim(jobId, 9, 12); // segment 9 twice
        vm.prank(finder);
        vm.expectRevert(JobsManager.SameClaim.selector);
        jobs.doubleClaimSegmentSlash(jobId, c0, c0, 5);
        vm.prank(finder);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.SegmentNotInClaim.selector, 5));
        jobs.doubleClaimSegmentSlash(jobId, c0, c1, 5);
        vm.prank(finder);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.NoSuchClaim.selector, jobId, 9));
        jobs.doubleClaimSegmentSlash(jobId, 9, c1, 9);
        uint256 stakeBefore = selfBond(t1);
        vm.prank(finder);
        jobs.doubleClaimSegmentSlash(jobId, c0, c1, 9);
        uint256 penalty = stakeBefore * cfg.jobs.doubleClaimSegmentSlashAmount / 1e6;
        assertEq(selfBond(t1), stakeBefore - penalty, "slashed");
        assertEq(token.balanceOf(finder), penalty * cfg.jobs.finderFee / 1e6, "finder's fee");
        assertEq(uint256(statusOf(jobId, c1)), uint256(JobsManager.ClaimStatus.Slashed), "second claim slashed");
        assertEq(uint256(statusOf(jobId, c0)), uint256(JobsManager.ClaimStatus.Pending), "first claim stands");
        (,,,,,,,,, uint256 escrow,) = jobs.getJob(jobId);
        assertEq(escrow, 10 * PROFILES * PRICE, "only the first claim stays escrowed");
    }

    /// @notice the 2018 bug: an honest transcoder slashed with one claim passed twice.
    function test_doubleClaimRefusesSameClaimId() public {
        uint256 jobId = startJob();
        (uint256 c0,) = claim(jobId, 0, 9);
        uint256 stakeBefore = selfBond(t1);
        vm.prank(finder);
        vm.expectRevert(JobsManager.SameClaim.selector);
        jobs.doubleClaimSegmentSlash(jobId, c0, c0, 3);
        assertEq(selfBond(t1), stakeBefore, "honest transcoder untouched");
    }

    // ------------------------------------------------------------------ fees

    function test_devWindows() public view {
        assertEq(cfg.jobs.verificationPeriod + cfg.jobs.verificationSlashingPeriod, WINDOWS, "dev windows");
    }

    function test_distributeFeesAndWithdraw() public {
        uint256 jobId = startJob();
        bondTo(d1, 1000 ether, t1); // half the stake from the next round on
        (uint256 c0,) = claim(jobId, 0, 9);
        (uint256 c1,) = claim(jobId, 10, 19);
        (uint256 c2,) = claim(jobId, 20, 29);
        uint256 cb = claimBlockOf(jobId, c2);
        uint256 end0 = claimBlockOf(jobId, c0) + WINDOWS;
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.SlashingPeriodNotOver.selector, end0));
        jobs.distributeFees(jobId, c0);
        vm.roll(cb + WINDOWS);
        nextRound(); // d1 now shares t1's earnings
        vm.prank(d1);
        vm.expectRevert(JobsManager.NotJobTranscoder.selector);
        jobs.distributeFees(jobId, c0);
        uint256 r = rounds.currentRound();
        vm.prank(t1);
        jobs.distributeFees(jobId, c0);
        uint256[] memory ids = new uint256[](2);
        ids[0] = c1;
        ids[1] = c2;
        vm.prank(t1);
        jobs.batchDistributeFees(jobId, ids);
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(JobsManager.ClaimNotPending.selector, c0));
        jobs.distributeFees(jobId, c0);
        uint256 fees = 30 * PROFILES * PRICE;
        (,,,,,,,,, uint256 escrow,) = jobs.getJob(jobId);
        assertEq(escrow, 0, "escrow paid out");
        (, uint256 feePool,, uint256 tFeePool,,) = bonding.getEarningsPool(t1, r);
        assertEq(feePool, fees / 2, "feeShare 50 % to the delegators' pool");
        assertEq(tFeePool, fees - fees / 2, "the rest to the transcoder");
        nextRound();
        vm.prank(d1);
        bonding.withdrawFees();
        assertEq(d1.balance, fees / 2 / 2, "d1 has half the stake");
        vm.prank(t1);
        bonding.withdrawFees();
        assertEq(t1.balance, fees - fees / 4, "t1: its cut and its stake share");
    }

    function test_feesOfInactiveTranscoderGoToItDirectly() public {
        uint256 jobId = startJob();
        (uint256 c0,) = claim(jobId, 0, 9);
        vm.prank(t1);
        bonding.unbond(1); // still registered, still active this round
        // let t1 miss the active set: resign fully, then distribute in a later round
        uint256 rest = selfBond(t1);
        vm.prank(t1);
        bonding.unbond(rest);
        nextRound();
        uint256 end0 = claimBlockOf(jobId, c0) + WINDOWS;
        vm.roll(end0 > block.number ? end0 : block.number);
        vm.prank(t1);
        jobs.distributeFees(jobId, c0);
        (, uint256 fees,,,,,) = bonding.getDelegator(t1);
        assertEq(fees, 10 * PROFILES * PRICE, "credited to the transcoder");
    }

    // ------------------------------------------------------------------ hashes and Merkle proofs

    function test_hashHelpersMatchLibrary() public view {
        bytes memory sig = sigFor(BKEY, STREAM, 7);
        assertEq(jobs.segmentHash(STREAM, 7, dataHash(7)), keccak256(abi.encodePacked(STREAM, uint256(7), dataHash(7))), "segment hash");
        assertEq(
            jobs.receiptHash(STREAM, 7, dataHash(7), tdHash(7), sig),
            keccak256(abi.encodePacked(STREAM, uint256(7), dataHash(7), tdHash(7), sig)),
            "receipt hash"
        );
        assertTrue(jobs.validTranscodingOptions(OPTIONS), "valid options");
    }

    function testFuzz_merkleProofs(uint8 count, uint8 index, bytes32 salt) public view {
        uint256 n = uint256(count) % 64 + 1;
        uint256 i = uint256(index) % n;
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 k = 0; k < n; k++) {
            leaves[k] = keccak256(abi.encode(salt, k));
        }
        bytes32 root = merkleRoot(leaves);
        bytes memory proof = merkleProof(leaves, i);
        assertTrue(jobs.verifyReceiptProof(proof, root, leaves[i]), "valid proof");
        assertTrue(!jobs.verifyReceiptProof(proof, root, keccak256(abi.encode(leaves[i]))), "other leaf");
        if (proof.length > 0) {
            proof[uint256(salt) % proof.length] ^= 0x01;
            assertTrue(!jobs.verifyReceiptProof(proof, root, leaves[i]), "flipped bit");
        }
    }

    function test_pausedJobs() public {
        uint256 jobId = startJob();
        controller.pause();
        vm.prank(t1);
        vm.expectRevert(Manager.SystemPaused.selector);
        jobs.claimWork(jobId, [uint256(0), uint256(0)], bytes32(0));
        vm.deal(broadcaster, 1);
        vm.prank(broadcaster);
        vm.expectRevert(Manager.SystemPaused.selector);
        jobs.deposit{value: 1}();
    }

    function test_badParameters() public {
        JobsManager.Params memory p = cfg.jobs;
        p.verificationPeriod = 200;
        p.verificationSlashingPeriod = 56;
        vm.expectRevert(JobsManager.InvalidParameter.selector);
        new JobsManager(controller, p);
        p = cfg.jobs;
        p.verificationRate = 0;
        vm.expectRevert(JobsManager.InvalidParameter.selector);
        new JobsManager(controller, p);
    }
}
