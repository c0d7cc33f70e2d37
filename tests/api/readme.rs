//! The README's curl examples, run as printed against the real binary on a fresh database.

use crate::helpers::{Backend, Process, TestDatabase};

/// Each `curl` line of the "Try the API" block, with the status its `# → NNN` comment promises.
fn examples(readme: &str) -> Vec<(String, u16)> {
    let section = readme
        .split("## Try the API")
        .nth(1)
        .expect("a 'Try the API' section");
    let block = section
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    let lines: Vec<&str> = block.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0].starts_with("curl "))
        .map(|pair| {
            let status = pair[1]
                .strip_prefix("# → ")
                .and_then(|rest| rest.get(..3))
                .and_then(|code| code.parse().ok())
                .unwrap_or_else(|| panic!("no '# → NNN' after {}", pair[0]));
            (pair[0].to_owned(), status)
        })
        .collect()
}

#[tokio::test]
async fn the_readme_curl_examples_work_as_printed() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let examples = examples(&readme);
    assert!(
        examples.len() >= 15,
        "only {} examples found",
        examples.len()
    );
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database");
    let process = Process::start(&database.url, &[]).await;
    for (command, expected) in examples {
        let command = command.replace(
            "http://127.0.0.1:8080",
            &format!("http://{}", process.address),
        );
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{command} -w '\\n%{{http_code}}'"))
            .env("REVWALLET_KEY", crate::helpers::ADMIN_KEY)
            .output()
            .expect("run curl");
        assert!(output.status.success(), "{command} failed: {output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let status = stdout.lines().last().unwrap_or_default();
        assert_eq!(status, expected.to_string(), "{command} answered {stdout}");
    }
}
