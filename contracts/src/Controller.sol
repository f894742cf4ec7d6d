// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @notice Registry that wires the protocol contracts together by name (keccak256 of the contract name),
/// with an owner and a global pause switch that every Manager honours.
contract Controller {
    address public owner;
    bool public paused;
    mapping(bytes32 => address) private registry;

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event SetContract(bytes32 indexed id, address contractAddress);
    event Paused();
    event Unpaused();

    error NotOwner();
    error ZeroAddress();
    error AlreadyPaused();
    error NotPaused();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function setContract(bytes32 id, address contractAddress) external onlyOwner {
        if (contractAddress == address(0)) revert ZeroAddress();
        registry[id] = contractAddress;
        emit SetContract(id, contractAddress);
    }

    /// @return the registered address, or address(0) when none.
    function getContract(bytes32 id) external view returns (address) {
        return registry[id];
    }

    function pause() external onlyOwner {
        if (paused) revert AlreadyPaused();
        paused = true;
        emit Paused();
    }

    function unpause() external onlyOwner {
        if (!paused) revert NotPaused();
        paused = false;
        emit Unpaused();
    }
}
