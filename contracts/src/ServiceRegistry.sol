// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "./Controller.sol";
import {Manager} from "./Manager.sol";

/// @notice Where each address can be reached off chain (as in the 2018 protocol): a transcoder publishes the
/// URI its box listens on, and a broadcaster reads the elected transcoder's URI from here. Any address sets
/// its own; the URI is not interpreted on chain, only its length is bounded.
contract ServiceRegistry is Manager {
    /// @notice longest URI accepted, in bytes.
    uint256 public constant MAX_SERVICE_URI_LENGTH = 256;

    mapping(address => string) private serviceURIs;

    event ServiceURIUpdate(address indexed addr, string serviceURI);

    error ServiceURITooLong(uint256 length, uint256 maxLength);

    constructor(Controller controller_) Manager(controller_) {}

    /// @notice publishes (or replaces, or with "" clears) the caller's service URI.
    function setServiceURI(string calldata serviceURI) external whenSystemNotPaused {
        uint256 n = bytes(serviceURI).length;
        if (n > MAX_SERVICE_URI_LENGTH) revert ServiceURITooLong(n, MAX_SERVICE_URI_LENGTH);
        serviceURIs[msg.sender] = serviceURI;
        emit ServiceURIUpdate(msg.sender, serviceURI);
    }

    /// @return the URI `addr` published, "" when none.
    function getServiceURI(address addr) external view returns (string memory) {
        return serviceURIs[addr];
    }
}
