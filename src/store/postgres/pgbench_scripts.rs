//! The pgbench scripts under `bench/pgbench/` run, byte for byte, the statements this backend sends, so that
//! `make bench` compares revwallet with its own SQL. This test renders them from the constants the binary uses
//! and fails when a committed script drifts; `REVWALLET_WRITE_PGBENCH=1 cargo test pgbench` rewrites them.

use std::path::PathBuf;

use super::{MOVE_CREDIT, sql};

const HEADER: &str = "-- GENERATED from src/store by `REVWALLET_WRITE_PGBENCH=1 cargo test pgbench`; `make test` fails if it drifts.\n";
const PICK_ID: &str = r"\set id random(:first_id, :last_id)";

/// One script copying a statement: its file, the constant's name, the statement, and the pgbench variable of
/// each `$n` placeholder in order.
struct Copied {
    file: &'static str,
    source: &'static str,
    statement: String,
    params: &'static [&'static str],
    comment: &'static str,
}

fn copied() -> [Copied; 2] {
    [
        Copied {
            file: "read_revwallet.sql",
            source: "GET_OPEN_WALLET",
            statement: sql::GET_OPEN_WALLET.to_owned(),
            params: &["id", "now"],
            comment: "A balance read exactly as revwallet sends it (GET /wallet/balance/{id} -> sql::GET_OPEN_WALLET).",
        },
        Copied {
            file: "deposit_revwallet.sql",
            source: "MOVE_CREDIT",
            statement: MOVE_CREDIT.clone(),
            params: &[
                "id",
                "amount",
                "now",
                "kind",
                "actor",
                "reference",
                "description",
                "metadata",
            ],
            comment: "A deposit exactly as revwallet sends it: MOVE_CREDIT, one data-modifying statement in its own\n\
                      -- implicit transaction (src/store/postgres/mod.rs movement_statement(sql::CREDIT)).",
        },
    ]
}

/// The textbook scripts revwallet is compared with (pgbench's own shapes on revwallet's tables).
const TEXTBOOK: [(&str, &str); 2] = [
    (
        "read_textbook.sql",
        "-- The textbook balance read: pgbench's primary-key select, on revwallet's wallets table.\n\
         \\set id random(:first_id, :last_id)\n\
         select balance from wallets where id = :id;\n",
    ),
    (
        "deposit_textbook.sql",
        "-- The textbook deposit: four round trips, the row lock held from the update to the commit.\n\
         \\set id random(:first_id, :last_id)\n\
         begin;\n\
         update wallets set balance = balance + :amount where id = :id returning balance \\gset\n\
         insert into transactions (wallet_id, kind, amount, balance_after, created_at) values (:id, 'deposit', :amount, :balance, now());\n\
         commit;\n",
    ),
];

/// `$n` placeholders become pgbench variables; nothing else in the text changes.
fn to_pgbench(statement: &str, params: &[&str]) -> String {
    let mut out = String::with_capacity(statement.len());
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            digits.push(d);
            chars.next();
        }
        let index: usize = digits.parse().expect("a $ in SQL is always a placeholder");
        let name = params
            .get(index - 1)
            .unwrap_or_else(|| panic!("placeholder ${index} has no pgbench variable"));
        out.push(':');
        out.push_str(name);
    }
    out
}

fn expected_files() -> Vec<(&'static str, String)> {
    let mut files: Vec<(&str, String)> = copied()
        .into_iter()
        .map(|script| {
            let mapping: Vec<String> = script
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| format!("${} = :{p}", i + 1))
                .collect();
            let text = format!(
                "{HEADER}-- {}\n-- source: {}; parameters: {}\n{PICK_ID}\n{};\n",
                script.comment,
                script.source,
                mapping.join(", "),
                to_pgbench(&script.statement, script.params)
            );
            (script.file, text)
        })
        .collect();
    files.extend(TEXTBOOK.map(|(file, text)| (file, format!("{HEADER}{text}"))));
    files
}

#[test]
fn placeholders_become_pgbench_variables_and_nothing_else_changes() {
    assert_eq!(
        to_pgbench(
            "update t set b = b + $2 where id = $1 and b <= 9 - $2",
            &["id", "amount"]
        ),
        "update t set b = b + :amount where id = :id and b <= 9 - :amount"
    );
}

#[test]
fn pgbench_scripts_carry_the_statements_revwallet_sends() {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/pgbench");
    let write = std::env::var_os("REVWALLET_WRITE_PGBENCH").is_some();
    for (file, text) in expected_files() {
        let path = directory.join(file);
        if write {
            std::fs::write(&path, &text).expect("write the pgbench script");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "bench/pgbench/{file} no longer carries the SQL of src/store: run \
             `REVWALLET_WRITE_PGBENCH=1 cargo test pgbench` and review the diff"
        );
    }
}
