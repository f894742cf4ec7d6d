//! The cargo-fuzz targets (fuzz/fuzz_targets), run in the ordinary test build on hand-made seeds and seeded
//! mutations of them (see the fuzz-smoke crate). The coverage-guided campaign is `./x fuzz`.
#[path = "../fuzz/fuzz_targets/node_answers.rs"]
mod node_answers;
#[path = "../fuzz/fuzz_targets/revert_data.rs"]
mod revert_data;

use ethers_core::abi::{Token, encode};
use ethers_core::types::{Address, H256, Log, TransactionReceipt, U256};
use ethers_core::utils::id;
use fuzz_smoke::Smoke;

fn with_selector(signature: &str, args: &[Token]) -> Vec<u8> {
    [&id(signature)[..], &encode(args)].concat()
}

#[test]
fn revert_data_on_standard_and_custom_errors_and_their_mutants() {
    let seeds = vec![
        with_selector(
            "Error(string)",
            &[Token::String("Bonding: not enough stake".into())],
        ),
        with_selector("Panic(uint256)", &[Token::Uint(0x11.into())]),
        with_selector("UnbondingPeriodNotOver(uint256)", &[Token::Uint(12.into())]),
        with_selector("NotInVerificationPeriod()", &[]),
        Vec::new(),
    ];
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "revert_data")
        .runs(50_000)
        .check(&seeds, revert_data::run);
}

#[test]
fn node_answers_on_headers_receipts_logs_and_abi_words_and_their_mutants() {
    let header = br#"{"number":"0x1b4","hash":"0xdc0818cf78f21a8e70579cb46a43643f78291264dda342ae31049421c82d21ae","parentHash":"0xe99e022112df268087ea7eafaf4790497fd21dbeeb6bd7a1721df161a6657a54","baseFeePerGas":"0x3b9aca00","timestamp":"0x55ba467c","logsBloom":null}"#;
    let log = Log {
        address: Address::repeat_byte(0x42),
        topics: vec![
            H256::from(ethers_core::utils::keccak256(
                "ClaimCreated(uint256,uint256)",
            )),
            H256::from_low_u64_be(7),
        ],
        data: encode(&[
            Token::Uint(3.into()),
            Token::Uint(U256::MAX),
            Token::Address(Address::repeat_byte(1)),
        ])
        .into(),
        block_number: Some(436.into()),
        ..Default::default()
    };
    let words = encode(&[
        Token::Uint(1.into()),
        Token::Address(Address::repeat_byte(9)),
        Token::FixedBytes(vec![0xab; 32]),
        Token::Bool(true),
        Token::Array(vec![
            Token::Address(Address::repeat_byte(2)),
            Token::Address(Address::repeat_byte(3)),
        ]),
    ]);
    // the seeds are answers the client takes, so that the mutants start deep inside them
    assert!(serde_json::from_slice::<chain::node::Header>(header).is_ok());
    let seeds = vec![
        header.to_vec(),
        serde_json::to_vec(&TransactionReceipt::default()).unwrap(),
        serde_json::to_vec(&vec![log.clone(), log]).unwrap(),
        words,
        b"null".to_vec(),
    ];
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "node_answers")
        .runs(20_000)
        .check(&seeds, node_answers::run);
}
