// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {Manager} from "../src/Manager.sol";
import {ServiceRegistry} from "../src/ServiceRegistry.sol";

contract ServiceRegistryTest is Fixture {
    string constant URI = "http://10.0.0.7:8935";

    function _repeat(bytes1 c, uint256 n) internal pure returns (string memory) {
        bytes memory b = new bytes(n);
        for (uint256 i = 0; i < n; i++) {
            b[i] = c;
        }
        return string(b);
    }

    function test_unknownAddressReadsEmpty() public view {
        assertEq(serviceRegistry.getServiceURI(t1), "", "nothing published");
        assertEq(serviceRegistry.getServiceURI(address(0)), "", "zero address");
    }

    function test_setEmitsAndReadsBack() public {
        vm.expectEmit(true, true, true, true, address(serviceRegistry));
        emit ServiceRegistry.ServiceURIUpdate(t1, URI);
        vm.prank(t1);
        serviceRegistry.setServiceURI(URI);
        assertEq(serviceRegistry.getServiceURI(t1), URI, "published");
        assertEq(serviceRegistry.getServiceURI(t2), "", "another address untouched");
    }

    function test_overwriteAndClear() public {
        vm.startPrank(t1);
        serviceRegistry.setServiceURI(URI);
        // a longer URI (several storage slots), then a shorter one: no leftover bytes of the longer
        string memory long = string.concat("https://", _repeat("a", 100), ".example:443/ingest");
        serviceRegistry.setServiceURI(long);
        assertEq(serviceRegistry.getServiceURI(t1), long, "overwritten with a longer URI");
        vm.expectEmit(true, true, true, true, address(serviceRegistry));
        emit ServiceRegistry.ServiceURIUpdate(t1, "http://h:1");
        serviceRegistry.setServiceURI("http://h:1");
        assertEq(serviceRegistry.getServiceURI(t1), "http://h:1", "overwritten with a shorter URI");
        serviceRegistry.setServiceURI("");
        assertEq(serviceRegistry.getServiceURI(t1), "", "cleared");
        vm.stopPrank();
    }

    function test_eachAddressSetsOnlyItsOwn() public {
        vm.prank(t1);
        serviceRegistry.setServiceURI(URI);
        vm.prank(t2);
        serviceRegistry.setServiceURI("http://10.0.0.8:8935");
        assertEq(serviceRegistry.getServiceURI(t1), URI, "t1 keeps its own");
        assertEq(serviceRegistry.getServiceURI(t2), "http://10.0.0.8:8935", "t2");
    }

    function test_lengthBound() public {
        uint256 max = serviceRegistry.MAX_SERVICE_URI_LENGTH();
        assertEq(max, 256, "bound");
        string memory atMax = _repeat("x", max);
        vm.prank(t1);
        serviceRegistry.setServiceURI(atMax);
        assertEq(serviceRegistry.getServiceURI(t1), atMax, "256 bytes accepted");
        vm.prank(t1);
        vm.expectRevert(abi.encodeWithSelector(ServiceRegistry.ServiceURITooLong.selector, max + 1, max));
        serviceRegistry.setServiceURI(_repeat("x", max + 1));
        assertEq(serviceRegistry.getServiceURI(t1), atMax, "unchanged by the refused call");
    }

    function test_pauseStopsUpdates() public {
        controller.pause();
        vm.prank(t1);
        vm.expectRevert(Manager.SystemPaused.selector);
        serviceRegistry.setServiceURI(URI);
        assertEq(serviceRegistry.getServiceURI(t1), "", "nothing published while paused");
        controller.unpause();
        vm.prank(t1);
        serviceRegistry.setServiceURI(URI);
        assertEq(serviceRegistry.getServiceURI(t1), URI, "published after unpause");
    }

    function testFuzz_roundTrip(address who, string calldata uri) public {
        vm.assume(bytes(uri).length <= 256);
        vm.prank(who);
        serviceRegistry.setServiceURI(uri);
        assertEq(serviceRegistry.getServiceURI(who), uri, "read back");
    }
}
