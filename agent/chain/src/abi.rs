//! The small runtime the generated bindings use: conversions between Rust values and ABI tokens, call
//! encoding, return-data decoding and revert decoding. The codec itself is ethers-core's (ethabi).

use ethers_core::abi::{self, ParamType, Token};
use ethers_core::types::{Address, Bytes, H256, I256, U256};

#[derive(Debug, thiserror::Error)]
pub enum AbiError {
    #[error("ABI decoding failed: {0}")]
    Decode(#[from] abi::Error),
    #[error("ABI value of the wrong kind: expected {expected}, got {got}")]
    UnexpectedToken { expected: &'static str, got: String },
    #[error("ABI integer out of range for {0}")]
    OutOfRange(&'static str),
    #[error("event log has {got} topics, expected {expected}")]
    Topics { expected: usize, got: usize },
    #[error("event log topic0 {got:?} is not this event's")]
    WrongEvent { got: H256 },
}

/// A Rust value that maps to one ABI value.
pub trait Tokenize: Sized {
    fn into_token(self) -> Token;
    fn from_token(token: Token) -> Result<Self, AbiError>;
}

fn unexpected<T>(expected: &'static str, got: Token) -> Result<T, AbiError> {
    Err(AbiError::UnexpectedToken {
        expected,
        got: format!("{got:?}"),
    })
}

impl Tokenize for U256 {
    fn into_token(self) -> Token {
        Token::Uint(self)
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        match token {
            Token::Uint(v) => Ok(v),
            t => unexpected("uint", t),
        }
    }
}

/// Signed integers of every width, as two's complement over 256 bits (ABI `intN` is sign-extended).
impl Tokenize for I256 {
    fn into_token(self) -> Token {
        Token::Int(self.into_raw())
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        match token {
            Token::Int(v) => Ok(I256::from_raw(v)),
            t => unexpected("int", t),
        }
    }
}

impl Tokenize for u8 {
    fn into_token(self) -> Token {
        Token::Uint(U256::from(self))
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        let v = U256::from_token(token)?;
        if v > U256::from(u8::MAX) {
            return Err(AbiError::OutOfRange("u8"));
        }
        Ok(v.as_u32() as u8)
    }
}

impl Tokenize for Address {
    fn into_token(self) -> Token {
        Token::Address(self)
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        match token {
            Token::Address(a) => Ok(a),
            t => unexpected("address", t),
        }
    }
}

impl Tokenize for bool {
    fn into_token(self) -> Token {
        Token::Bool(self)
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        match token {
            Token::Bool(b) => Ok(b),
            t => unexpected("bool", t),
        }
    }
}

impl Tokenize for H256 {
    fn into_token(self) -> Token {
        Token::FixedBytes(self.as_bytes().to_vec())
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        match token {
            Token::FixedBytes(b) if b.len() == 32 => Ok(H256::from_slice(&b)),
            t => unexpected("bytes32", t),
        }
    }
}

impl Tokenize for Bytes {
    fn into_token(self) -> Token {
        Token::Bytes(self.to_vec())
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        match token {
            Token::Bytes(b) => Ok(b.into()),
            t => unexpected("bytes", t),
        }
    }
}

impl Tokenize for String {
    fn into_token(self) -> Token {
        Token::String(self)
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        match token {
            Token::String(s) => Ok(s),
            t => unexpected("string", t),
        }
    }
}

impl<T: Tokenize> Tokenize for Vec<T> {
    fn into_token(self) -> Token {
        Token::Array(self.into_iter().map(Tokenize::into_token).collect())
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        match token {
            Token::Array(v) => v.into_iter().map(T::from_token).collect(),
            t => unexpected("T[]", t),
        }
    }
}

impl<T: Tokenize, const N: usize> Tokenize for [T; N] {
    fn into_token(self) -> Token {
        Token::FixedArray(self.into_iter().map(Tokenize::into_token).collect())
    }
    fn from_token(token: Token) -> Result<Self, AbiError> {
        match token {
            Token::FixedArray(v) if v.len() == N => {
                let items = v
                    .into_iter()
                    .map(T::from_token)
                    .collect::<Result<Vec<T>, _>>()?;
                items
                    .try_into()
                    .map_err(|_| AbiError::OutOfRange("fixed array"))
            }
            t => unexpected("T[N]", t),
        }
    }
}

/// selector ++ abi.encode(args)
pub fn encode_call(selector: [u8; 4], args: Vec<Token>) -> Bytes {
    let mut out = selector.to_vec();
    out.extend(abi::encode(&args));
    out.into()
}

/// abi.decode(data, types) as an iterator of tokens, for the generated decoders.
pub fn decode(types: &[ParamType], data: &[u8]) -> Result<std::vec::IntoIter<Token>, AbiError> {
    Ok(abi::decode(types, data)?.into_iter())
}

/// Next token of a decoded list (the generated decoders ask for exactly as many as they declared).
pub fn next<T: Tokenize>(tokens: &mut std::vec::IntoIter<Token>) -> Result<T, AbiError> {
    match tokens.next() {
        Some(t) => T::from_token(t),
        None => Err(AbiError::OutOfRange("too few values")),
    }
}

/// A custom error a contract can revert with: selector, name and argument types.
pub struct ErrorDef {
    pub selector: [u8; 4],
    pub name: &'static str,
    pub inputs: fn() -> Vec<ParamType>,
}

/// Human-readable revert reason: a custom error from `errors` as `Name(arg, ...)`, `Error(string)`,
/// `Panic(code)`, or the raw hex when nothing matches.
pub fn describe_revert(errors: &[ErrorDef], data: &[u8]) -> String {
    if data.len() < 4 {
        return format!("revert 0x{}", hex::encode(data));
    }
    let (sel, args) = data.split_at(4);
    let builtin: [(&[u8], &str, Vec<ParamType>); 2] = [
        (&[0x08, 0xc3, 0x79, 0xa0], "Error", vec![ParamType::String]),
        (
            &[0x4e, 0x48, 0x7b, 0x71],
            "Panic",
            vec![ParamType::Uint(256)],
        ),
    ];
    for (s, name, types) in builtin {
        if sel == s {
            if let Ok(tokens) = abi::decode(&types, args) {
                return format!("{name}({})", join(&tokens));
            }
        }
    }
    for e in errors {
        if sel == e.selector {
            if let Ok(tokens) = abi::decode(&(e.inputs)(), args) {
                return format!("{}({})", e.name, join(&tokens));
            }
        }
    }
    format!("revert 0x{}", hex::encode(data))
}

fn join(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Topic of an indexed event argument; dynamic indexed values appear as their keccak256 hash.
pub fn topic<T: Tokenize>(topics: &[H256], i: usize, kind: ParamType) -> Result<T, AbiError> {
    let t = topics.get(i).ok_or(AbiError::Topics {
        expected: i + 1,
        got: topics.len(),
    })?;
    let mut tokens = decode(&[kind], t.as_bytes())?;
    next(&mut tokens)
}
