//! Revert data in words a person can act on: the named custom error of whichever protocol contract raised it
//! (a call into the BondingManager can revert in the Token or the Minter), plus what to do about it.

use crate::abi::{self, ErrorDef};
use crate::bindings::{
    bonding_manager, controller, jobs_manager, minter, rounds_manager, service_registry, token,
    verifier,
};

const TABLES: [&[ErrorDef]; 8] = [
    bonding_manager::ERRORS,
    rounds_manager::ERRORS,
    token::ERRORS,
    minter::ERRORS,
    jobs_manager::ERRORS,
    verifier::ERRORS,
    service_registry::ERRORS,
    controller::ERRORS,
];

/// `Name(arg, ...)` of the custom error in `data`, searched in every protocol contract's table.
pub fn describe(data: &[u8]) -> String {
    let fallback = abi::describe_revert(&[], data);
    for t in TABLES {
        let d = abi::describe_revert(t, data);
        if d != fallback {
            return d;
        }
    }
    fallback
}

/// The error name of a description (`UnbondingPeriodNotOver(5)` -> `UnbondingPeriodNotOver`).
pub fn name(description: &str) -> &str {
    description.split('(').next().unwrap_or(description)
}

/// The first argument of a description, as a decimal number when it is one (hex as `ethabi` prints uints).
fn first_arg(description: &str) -> Option<String> {
    let inner = description.split_once('(')?.1.trim_end_matches(')');
    let a = inner.split(',').next()?.trim();
    Some(match u128::from_str_radix(a, 16) {
        Ok(n) => n.to_string(),
        Err(_) => a.to_string(),
    })
}

/// What a person should do about a revert, when there is something to say.
pub fn advice(description: &str) -> Option<String> {
    let arg = || first_arg(description).unwrap_or_default();
    Some(match name(description) {
        "RoundNotInitialized" => {
            "the current round is not initialized yet: run `edge-agent round init` (anyone may) and retry".into()
        }
        "RoundAlreadyInitialized" => format!("round {} is already initialized: nothing to do", arg()),
        "RoundLocked" => "the round is in its lock period: retry after the next round starts".into(),
        "NotSelfBonded" => {
            "register needs a self-bond first: `edge-agent bond AMOUNT --to <own address>`".into()
        }
        "UnbondingPeriodNotOver" => format!(
            "the unbonding period is not over: the stake can be withdrawn from round {} on",
            arg()
        ),
        "NothingToWithdraw" => "there is nothing to withdraw".into(),
        "InsufficientBond" => "the amount is more than the bonded stake".into(),
        "NotActiveTranscoder" => {
            "this account is not in the current round's active transcoder set".into()
        }
        "RewardAlreadyCalled" => format!("reward was already called for round {}", arg()),
        "InvalidEndRound" => {
            "earnings can be claimed up to the last finished round, after the last claim".into()
        }
        "TranscoderCannotRedelegate" => {
            "a registered transcoder cannot move its bond to another address: unbond first".into()
        }
        "PoolFull" => format!(
            "the transcoder pool is full: more stake than the lowest member ({}) is needed",
            arg()
        ),
        "InsufficientBalance" => "the token balance is too low for this amount".into(),
        "InsufficientAllowance" => "the token allowance is too low (approve first)".into(),
        "FaucetDisabled" => "this chain's token has no faucet (only dev chains do)".into(),
        "FaucetTooSoon" => format!("the faucet can be used again from block {}", arg()),
        "InsufficientETH" => "the Minter does not hold enough ETH for this payout".into(),
        "DepositLocked" => format!("the deposit is locked until block {} (a job of this broadcaster is still open)", arg()),
        "ZeroAddress" => "the address must not be zero".into(),
        "InvalidParameter" => "a parameter is out of range".into(),
        "ServiceURITooLong" => "the service URI is longer than the registry's 256 bytes".into(),
        _ => return None,
    })
}

/// Description plus advice, for error messages.
pub fn explain(data: &[u8]) -> String {
    let d = describe(data);
    match advice(&d) {
        Some(a) => format!("{d}: {a}"),
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ethers_core::abi::{Token, encode};

    fn custom(selector: [u8; 4], args: &[Token]) -> Vec<u8> {
        let mut v = selector.to_vec();
        v.extend(encode(args));
        v
    }

    #[test]
    fn finds_the_error_in_any_contract_and_says_what_to_do() {
        let sel = |name: &str| {
            TABLES
                .iter()
                .flat_map(|t| t.iter())
                .find(|e| e.name == name)
                .unwrap()
                .selector
        };
        let d = custom(sel("UnbondingPeriodNotOver"), &[Token::Uint(12.into())]);
        assert_eq!(describe(&d), "UnbondingPeriodNotOver(c)");
        assert_eq!(
            explain(&d),
            "UnbondingPeriodNotOver(c): the unbonding period is not over: the stake can be withdrawn from round 12 on"
        );
        // a Token error raised inside a BondingManager call
        let d = custom(
            sel("InsufficientAllowance"),
            &[Token::Uint(0.into()), Token::Uint(5.into())],
        );
        assert!(explain(&d).starts_with("InsufficientAllowance(0, 5): "));
        assert_eq!(describe(&[1, 2]), "revert 0x0102");
        assert_eq!(advice("Whatever()"), None);
    }
}
