//! Generates `src/bindings/*.rs` from the forge artifacts (`contracts/out/<Name>.sol/<Name>.json`), so the
//! Rust side never carries a hand-copied ABI.
//!
//!   cargo run -p chain --bin gen-bindings            # regenerate (after `forge build` in contracts/)
//!   cargo run -p chain --bin gen-bindings -- --check # exit 1 when the committed bindings are stale (CI)
//!
//! Every function selector is computed here and cross-checked against solc's `methodIdentifiers`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow_lite::{Context, Result, bail};
use serde_json::Value;

/// The protocol contracts, in dependency order.
const CONTRACTS: &[&str] = &[
    "Controller",
    "Token",
    "RoundsManager",
    "BondingManager",
    "Minter",
    "JobsManager",
    "Verifier",
    "ServiceRegistry",
];

mod anyhow_lite {
    //! The generator's error plumbing (a bin of a library crate: keep its dependencies those of the lib).
    pub type Result<T> = std::result::Result<T, String>;
    pub trait Context<T> {
        fn context(self, what: impl std::fmt::Display) -> Result<T>;
    }
    impl<T, E: std::fmt::Display> Context<T> for std::result::Result<T, E> {
        fn context(self, what: impl std::fmt::Display) -> Result<T> {
            self.map_err(|e| format!("{what}: {e}"))
        }
    }
    impl<T> Context<T> for Option<T> {
        fn context(self, what: impl std::fmt::Display) -> Result<T> {
            self.ok_or_else(|| what.to_string())
        }
    }
    macro_rules! bail {
        ($($t:tt)*) => { return Err(format!($($t)*)) };
    }
    pub(crate) use bail;
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gen-bindings: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut artifacts = manifest.join("../../contracts/out");
    let mut out_dir = manifest.join("src/bindings");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--artifacts" => {
                artifacts = args.next().context("--artifacts needs a directory")?.into()
            }
            "--out" => out_dir = args.next().context("--out needs a directory")?.into(),
            other => bail!("unknown argument {other} (use --check, --artifacts DIR, --out DIR)"),
        }
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut module = String::from(HEADER);
    module.push_str(
        "//! One module per contract. Regenerate with `cargo run -p chain --bin gen-bindings`.\n\n",
    );
    for name in CONTRACTS {
        let path = artifacts.join(format!("{name}.sol/{name}.json"));
        let text = std::fs::read_to_string(&path).context(format!(
            "reading {} (run forge build in contracts/ first)",
            path.display()
        ))?;
        let artifact: Value =
            serde_json::from_str(&text).context(format!("parsing {}", path.display()))?;
        let code = contract(name, &artifact).context(format!("generating {name}"))?;
        let m = snake(name);
        writeln!(module, "pub mod {m};").unwrap();
        files.insert(format!("{m}.rs"), code);
    }
    files.insert("mod.rs".into(), module);

    let tmp = std::env::temp_dir().join(format!("gen-bindings-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).context("creating a temporary directory")?;
    for (f, code) in &files {
        std::fs::write(tmp.join(f), code).context(format!("writing {f}"))?;
    }
    rustfmt(&tmp, files.keys())?;
    let mut fresh = true;
    for f in files.keys() {
        let generated = std::fs::read(tmp.join(f)).context(format!("reading back {f}"))?;
        let target = out_dir.join(f);
        let current = std::fs::read(&target).ok();
        if current.as_deref() == Some(generated.as_slice()) {
            continue;
        }
        if check {
            eprintln!(
                "gen-bindings: {} is stale (regenerate with `cargo run -p chain --bin gen-bindings`)",
                target.display()
            );
            fresh = false;
        } else {
            std::fs::create_dir_all(&out_dir).context("creating the output directory")?;
            std::fs::write(&target, generated).context(format!("writing {}", target.display()))?;
            eprintln!("gen-bindings: wrote {}", target.display());
        }
    }
    if check {
        for entry in std::fs::read_dir(&out_dir).context("listing the bindings")? {
            let f = entry
                .context("listing the bindings")?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if f.ends_with(".rs") && !files.contains_key(&f) {
                eprintln!("gen-bindings: {f} is not generated any more");
                fresh = false;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    if check && fresh {
        eprintln!("gen-bindings: bindings are up to date with contracts/out");
    }
    Ok(fresh || !check)
}

fn rustfmt<'a>(dir: &Path, files: impl Iterator<Item = &'a String>) -> Result<()> {
    let mut cmd = Command::new("rustfmt");
    cmd.arg("--edition").arg("2024");
    // format as `cargo fmt` does in the tree: with the workspace's rustfmt config, if it has one
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if root.join("rustfmt.toml").exists() || root.join(".rustfmt.toml").exists() {
        cmd.arg("--config-path").arg(&root);
    }
    let status = cmd
        .args(files.map(|f| dir.join(f)))
        .status()
        .context("running rustfmt")?;
    if !status.success() {
        bail!("rustfmt failed on the generated code");
    }
    Ok(())
}

const HEADER: &str = "// @generated by `cargo run -p chain --bin gen-bindings` from the forge artifacts in contracts/out.\n// Do not edit: CI regenerates these files and fails on any difference.\n";

struct Param {
    name: String,
    ty: String,
    indexed: bool,
}

fn params(v: &Value, key: &str) -> Result<Vec<Param>> {
    let list = v
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let ty = p["type"]
                .as_str()
                .context("parameter without a type")?
                .to_string();
            if ty.starts_with("tuple") {
                bail!("tuple parameters are not supported by this generator");
            }
            let raw = p["name"].as_str().unwrap_or("");
            let name = if raw.is_empty() {
                format!("arg{i}")
            } else {
                ident(&snake(raw))
            };
            Ok(Param {
                name,
                ty,
                indexed: p["indexed"].as_bool().unwrap_or(false),
            })
        })
        .collect()
}

/// (Rust type, ethabi ParamType expression) of a Solidity type.
fn map_type(ty: &str) -> Result<(String, String)> {
    if let Some(inner) = ty.strip_suffix("[]") {
        let (r, p) = map_type(inner)?;
        return Ok((
            format!("Vec<{r}>"),
            format!("ParamType::Array(Box::new({p}))"),
        ));
    }
    if let Some(stripped) = ty.strip_suffix(']') {
        let open = stripped
            .rfind('[')
            .context(format!("bad array type {ty}"))?;
        let n: usize = stripped[open + 1..]
            .parse()
            .context(format!("bad array length in {ty}"))?;
        let (r, p) = map_type(&stripped[..open])?;
        return Ok((
            format!("[{r}; {n}]"),
            format!("ParamType::FixedArray(Box::new({p}), {n})"),
        ));
    }
    Ok(match ty {
        "address" => ("Address".into(), "ParamType::Address".into()),
        "bool" => ("bool".into(), "ParamType::Bool".into()),
        "string" => ("String".into(), "ParamType::String".into()),
        "bytes" => ("Bytes".into(), "ParamType::Bytes".into()),
        "bytes32" => ("H256".into(), "ParamType::FixedBytes(32)".into()),
        "uint8" => ("u8".into(), "ParamType::Uint(8)".into()),
        t if t.starts_with("uint") => {
            let bits: usize = t[4..].parse().context(format!("bad uint type {t}"))?;
            ("U256".into(), format!("ParamType::Uint({bits})"))
        }
        t if t.starts_with("int") => {
            let bits: usize = t[3..].parse().context(format!("bad int type {t}"))?;
            ("I256".into(), format!("ParamType::Int({bits})"))
        }
        other => bail!("Solidity type {other} is not supported by this generator"),
    })
}

fn is_dynamic(ty: &str) -> bool {
    ty == "string" || ty == "bytes" || ty.ends_with(']')
}

fn keccak(data: &[u8]) -> [u8; 32] {
    ethers_core::utils::keccak256(data)
}

fn byte_list(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("0x{x:02x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn signature(name: &str, ps: &[Param]) -> String {
    format!(
        "{name}({})",
        ps.iter()
            .map(|p| p.ty.as_str())
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn contract(name: &str, artifact: &Value) -> Result<String> {
    let abi = artifact["abi"]
        .as_array()
        .context("artifact without an abi")?;
    let ids = artifact["methodIdentifiers"]
        .as_object()
        .context("artifact without methodIdentifiers")?;
    let mut out = String::from(HEADER);
    writeln!(
        out,
        "//! Bindings of `{name}` (contracts/src/{name}.sol).\n"
    )
    .unwrap();
    out.push_str("#![allow(clippy::too_many_arguments, clippy::doc_markdown)]\n\n");
    out.push_str(
        "#[allow(unused_imports)]\nuse crate::abi::{self, AbiError, ErrorDef, Tokenize};\n",
    );
    out.push_str("#[allow(unused_imports)]\nuse ethers_core::abi::ParamType;\n");
    out.push_str(
        "#[allow(unused_imports)]\nuse ethers_core::types::{Address, Bytes, H256, I256, U256};\n\n",
    );
    writeln!(out, "/// Contract name, as in the deployment JSON's keys and the Controller registry.\npub const CONTRACT: &str = \"{name}\";\n").unwrap();

    let mut seen = BTreeMap::new();
    let mut events = String::new();
    let mut errors = Vec::new();
    for item in abi {
        match item["type"].as_str() {
            Some("function") => {
                let fname = item["name"].as_str().context("function without a name")?;
                if seen.insert(fname.to_string(), ()).is_some() {
                    bail!("overloaded function {fname} is not supported by this generator");
                }
                function(&mut out, fname, item, ids)?;
            }
            Some("event") => event(&mut events, item)?,
            Some("error") => errors.push(item.clone()),
            _ => {}
        }
    }
    out.push_str("/// Events, decodable from a log's topics and data.\npub mod events {\n");
    out.push_str("#[allow(unused_imports)]\nuse crate::abi::{self, AbiError, Tokenize};\n#[allow(unused_imports)]\nuse ethers_core::abi::ParamType;\n#[allow(unused_imports)]\nuse ethers_core::types::{Address, Bytes, H256, I256, U256};\n\n");
    out.push_str(&events);
    out.push_str("}\n\n");

    // custom errors: a table for describe_revert
    errors.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut table = String::new();
    for e in &errors {
        let ename = e["name"].as_str().context("error without a name")?;
        let ps = params(e, "inputs")?;
        let sig = signature(ename, &ps);
        let sel = &keccak(sig.as_bytes())[..4];
        let types = ps
            .iter()
            .map(|p| map_type(&p.ty).map(|t| t.1))
            .collect::<Result<Vec<_>>>()?;
        let f = format!("err_{}_inputs", snake(ename));
        writeln!(
            out,
            "fn {f}() -> Vec<ParamType> {{ vec![{}] }}",
            types.join(", ")
        )
        .unwrap();
        writeln!(
            table,
            "    ErrorDef {{ selector: [{}], name: \"{ename}\", inputs: {f} }}, // {sig}",
            byte_list(sel)
        )
        .unwrap();
    }
    writeln!(out, "\n/// Custom errors of `{name}` (including those of the libraries it uses).\npub const ERRORS: &[ErrorDef] = &[\n{table}];\n").unwrap();
    out.push_str("/// `Name(args)` of revert data from this contract (or the raw hex).\npub fn describe_revert(data: &[u8]) -> String {\n    abi::describe_revert(ERRORS, data)\n}\n");
    Ok(out)
}

fn function(
    out: &mut String,
    fname: &str,
    item: &Value,
    ids: &serde_json::Map<String, Value>,
) -> Result<()> {
    let inputs = params(item, "inputs")?;
    let outputs = params(item, "outputs")?;
    let sig = signature(fname, &inputs);
    let sel = &keccak(sig.as_bytes())[..4];
    let solc = ids
        .get(&sig)
        .and_then(Value::as_str)
        .context(format!("{sig} missing from methodIdentifiers"))?;
    if solc != hex::encode(sel) {
        bail!(
            "selector of {sig}: computed {} but solc says {solc}",
            hex::encode(sel)
        );
    }
    let mutability = item["stateMutability"].as_str().unwrap_or("nonpayable");
    let fs = ident(&snake(fname));
    let upper = snake(fname).to_uppercase();
    writeln!(
        out,
        "/// Selector of `{sig}`.\npub const {upper}_SELECTOR: [u8; 4] = [{}];\n",
        byte_list(sel)
    )
    .unwrap();
    let args = inputs
        .iter()
        .map(|p| map_type(&p.ty).map(|(r, _)| format!("{}: {r}", p.name)))
        .collect::<Result<Vec<_>>>()?;
    let toks = inputs
        .iter()
        .map(|p| format!("{}.into_token()", p.name))
        .collect::<Vec<_>>();
    writeln!(
        out,
        "/// Calldata of `{sig}` ({mutability}).\npub fn {fs}({}) -> Bytes {{\n    abi::encode_call({upper}_SELECTOR, vec![{}])\n}}\n",
        args.join(", "),
        toks.join(", ")
    )
    .unwrap();
    if outputs.is_empty() {
        return Ok(());
    }
    let types = outputs
        .iter()
        .map(|p| map_type(&p.ty))
        .collect::<Result<Vec<_>>>()?;
    let ptypes = types
        .iter()
        .map(|t| t.1.clone())
        .collect::<Vec<_>>()
        .join(", ");
    if outputs.len() == 1 {
        writeln!(
            out,
            "/// Decodes the return data of `{sig}`.\npub fn decode_{}(data: &[u8]) -> Result<{}, AbiError> {{\n    let mut t = abi::decode(&[{ptypes}], data)?;\n    abi::next(&mut t)\n}}\n",
            snake(fname),
            types[0].0
        )
        .unwrap();
        return Ok(());
    }
    let sname = format!("{}Output", camel(fname));
    writeln!(out, "/// Return values of `{sig}`.\n#[derive(Debug, Clone, PartialEq, Eq)]\npub struct {sname} {{").unwrap();
    for (p, (r, _)) in outputs.iter().zip(&types) {
        writeln!(out, "    pub {}: {r},", p.name).unwrap();
    }
    out.push_str("}\n\n");
    let fields = outputs
        .iter()
        .map(|p| format!("{}: abi::next(&mut t)?", p.name))
        .collect::<Vec<_>>();
    writeln!(
        out,
        "/// Decodes the return data of `{sig}`.\npub fn decode_{}(data: &[u8]) -> Result<{sname}, AbiError> {{\n    let mut t = abi::decode(&[{ptypes}], data)?;\n    Ok({sname} {{ {} }})\n}}\n",
        snake(fname),
        fields.join(", ")
    )
    .unwrap();
    Ok(())
}

fn event(out: &mut String, item: &Value) -> Result<()> {
    let ename = item["name"].as_str().context("event without a name")?;
    let ps = params(item, "inputs")?;
    let sig = signature(ename, &ps);
    let topic = keccak(sig.as_bytes());
    writeln!(
        out,
        "/// `event {sig}`\n#[derive(Debug, Clone, PartialEq, Eq)]\npub struct {ename} {{"
    )
    .unwrap();
    let mut fields = Vec::new();
    let mut data_types = Vec::new();
    let mut topic_i = 1;
    let mut assigns = Vec::new();
    for p in &ps {
        let (r, pt) = map_type(&p.ty)?;
        if p.indexed && is_dynamic(&p.ty) {
            // dynamic indexed values are only present as their hash
            fields.push(format!(
                "    /// keccak256 of the indexed `{}` value\n    pub {}: H256,",
                p.ty, p.name
            ));
            assigns.push(format!(
                "{}: abi::topic(topics, {topic_i}, ParamType::FixedBytes(32))?",
                p.name
            ));
            topic_i += 1;
        } else if p.indexed {
            fields.push(format!("    pub {}: {r},", p.name));
            assigns.push(format!("{}: abi::topic(topics, {topic_i}, {pt})?", p.name));
            topic_i += 1;
        } else {
            fields.push(format!("    pub {}: {r},", p.name));
            data_types.push(pt);
            assigns.push(format!("{}: abi::next(&mut d)?", p.name));
        }
    }
    out.push_str(&fields.join("\n"));
    out.push_str("\n}\n\n");
    writeln!(
        out,
        "impl {ename} {{\n    /// topic0: keccak256(\"{sig}\")\n    pub const TOPIC: H256 = H256([{}]);\n\n    /// Decodes a log of this event (topic0 included in `topics`).\n    pub fn decode(topics: &[H256], data: &[u8]) -> Result<Self, AbiError> {{\n        if topics.len() != {topic_i} {{\n            return Err(AbiError::Topics {{ expected: {topic_i}, got: topics.len() }});\n        }}\n        if topics[0] != Self::TOPIC {{\n            return Err(AbiError::WrongEvent {{ got: topics[0] }});\n        }}\n        #[allow(unused_mut, unused_variables)]\n        let mut d = abi::decode(&[{}], data)?;\n        Ok(Self {{ {} }})\n    }}\n}}\n",
        byte_list(&topic),
        data_types.join(", "),
        assigns.join(", ")
    )
    .unwrap();
    Ok(())
}

/// camelCase / PascalCase / UPPER_CASE -> snake_case
fn snake(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = if i > 0 { chars[i - 1] } else { '_' };
            let next = chars.get(i + 1).copied().unwrap_or('_');
            if i > 0
                && prev != '_'
                && (prev.is_ascii_lowercase() || prev.is_ascii_digit() || next.is_ascii_lowercase())
            {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out.trim_start_matches('_').to_string()
}

fn camel(s: &str) -> String {
    snake(s)
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            let first = c.next().unwrap().to_ascii_uppercase();
            std::iter::once(first).chain(c).collect::<String>()
        })
        .collect()
}

fn ident(s: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn",
        "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
        "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
        "where", "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final",
        "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
    ];
    if KEYWORDS.contains(&s) {
        format!("{s}_")
    } else {
        s.to_string()
    }
}
