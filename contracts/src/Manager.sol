// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "./Controller.sol";

/// @notice Base of every protocol contract: finds its peers through the Controller and honours its pause.
abstract contract Manager {
    Controller public immutable controller;

    error SystemPaused();
    error NotControllerOwner();
    error Unauthorized(address caller);

    bytes32 internal constant BONDING_MANAGER = keccak256("BondingManager");
    bytes32 internal constant JOBS_MANAGER = keccak256("JobsManager");
    bytes32 internal constant ROUNDS_MANAGER = keccak256("RoundsManager");
    bytes32 internal constant MINTER = keccak256("Minter");
    bytes32 internal constant TOKEN = keccak256("Token");
    bytes32 internal constant VERIFIER = keccak256("Verifier");

    constructor(Controller controller_) {
        controller = controller_;
    }

    modifier whenSystemNotPaused() {
        if (controller.paused()) revert SystemPaused();
        _;
    }

    modifier onlyControllerOwner() {
        if (msg.sender != controller.owner()) revert NotControllerOwner();
        _;
    }

    modifier onlyContract(bytes32 id) {
        if (msg.sender != controller.getContract(id)) revert Unauthorized(msg.sender);
        _;
    }

    function _contract(bytes32 id) internal view returns (address) {
        return controller.getContract(id);
    }
}
