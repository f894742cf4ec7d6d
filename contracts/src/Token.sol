// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Controller} from "./Controller.sol";
import {Manager} from "./Manager.sol";

/// @notice ERC-20 protocol token. New tokens come only from the Minter (`mint`), except the genesis supply
/// given at deployment and the `faucet`, which works only on dev chains (chain id 31337 or 1337).
contract Token is Manager {
    string public constant name = "Edge Transcoder Token";
    string public constant symbol = "ETT";
    uint8 public constant decimals = 18;

    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    /// @notice tokens per faucet request (0 disables the faucet).
    uint256 public immutable faucetAmount;
    /// @notice blocks an address must wait between faucet requests.
    uint256 public immutable faucetWait;
    mapping(address => uint256) public nextFaucetBlock;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error InsufficientBalance(uint256 have, uint256 want);
    error InsufficientAllowance(uint256 have, uint256 want);
    error FaucetDisabled();
    error FaucetTooSoon(uint256 nextBlock);

    constructor(Controller controller_, address genesisHolder, uint256 genesisSupply, uint256 faucetAmount_, uint256 faucetWait_)
        Manager(controller_)
    {
        faucetAmount = faucetAmount_;
        faucetWait = faucetWait_;
        if (genesisSupply > 0) _mint(genesisHolder, genesisSupply);
    }

    function isDevChain() public view returns (bool) {
        return block.chainid == 31337 || block.chainid == 1337;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 a = allowance[from][msg.sender];
        if (a != type(uint256).max) {
            if (a < value) revert InsufficientAllowance(a, value);
            allowance[from][msg.sender] = a - value;
        }
        _transfer(from, to, value);
        return true;
    }

    /// @notice only the Minter registered in the Controller may mint.
    function mint(address to, uint256 value) external onlyContract(MINTER) {
        _mint(to, value);
    }

    /// @notice anyone may burn their own tokens (the BondingManager burns slashed stake this way).
    function burn(uint256 value) external {
        uint256 b = balanceOf[msg.sender];
        if (b < value) revert InsufficientBalance(b, value);
        balanceOf[msg.sender] = b - value;
        totalSupply -= value;
        emit Transfer(msg.sender, address(0), value);
    }

    /// @notice dev chains only: `faucetAmount` tokens every `faucetWait` blocks per address.
    function faucet() external {
        if (!isDevChain() || faucetAmount == 0) revert FaucetDisabled();
        if (block.number < nextFaucetBlock[msg.sender]) revert FaucetTooSoon(nextFaucetBlock[msg.sender]);
        nextFaucetBlock[msg.sender] = block.number + faucetWait;
        _mint(msg.sender, faucetAmount);
    }

    function _mint(address to, uint256 value) internal {
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    function _transfer(address from, address to, uint256 value) internal {
        uint256 b = balanceOf[from];
        if (b < value) revert InsufficientBalance(b, value);
        balanceOf[from] = b - value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
