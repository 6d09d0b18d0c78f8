//! The user guide `docs/certificate-auth.md`: every ```sh block, in order, against a
//! real certgate, with the guide's variables (GW, SECRET, CA, CERT, KEY, UPSTREAM).
//!
//! Each block runs as `bash -euo pipefail -c` in one working directory. Shell variables
//! a block defines (e.g. `CERT_ID`) are handed to the later blocks, as they would be
//! for a reader pasting the blocks into one terminal.

use std::path::{Path, PathBuf};

use crate::support::*;

fn sh_blocks(md: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        match &mut cur {
            None if line.trim_end() == "```sh" => cur = Some(String::new()),
            Some(b) if line.trim_end() == "```" => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    assert!(cur.is_none(), "unterminated ```sh block");
    blocks
}

const PRELUDE: &str = "if [ -f ./.guide-env ]; then . ./.guide-env; fi\n\
__guide_before=\"$(compgen -v | sort)\"\n";

const EPILOGUE: &str = "\n__guide_after=\"$(compgen -v | sort)\"\n\
for __guide_v in $(comm -13 <(printf '%s\\n' \"$__guide_before\") <(printf '%s\\n' \"$__guide_after\")); do\n\
  case \"$__guide_v\" in __guide_*) ;; *) declare -p \"$__guide_v\" >> ./.guide-env ;; esac\n\
done\n";

async fn bash(dir: &Path, script: String, env: Vec<(&'static str, String)>) -> (i32, String) {
    let dir: PathBuf = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(&dir)
            .envs(env)
            .output()
            .expect("bash");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn guide_sh_blocks_run_in_order() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/certificate-auth.md"
    );
    let md = std::fs::read_to_string(path).unwrap();
    let blocks = sh_blocks(&md);
    assert!(blocks.len() >= 5, "only {} sh blocks", blocks.len());

    let up = upstream().await;
    let gw = gateway().start().await;
    let client = pki().ca.client("guide-client").unwrap();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    std::fs::write(d.join("ca.pem"), &pki().ca.cert.cert_pem).unwrap();
    std::fs::write(d.join("client.pem"), &client.cert_pem).unwrap();
    std::fs::write(d.join("client.key"), &client.key_pem).unwrap();
    let abs = |f: &str| d.join(f).to_str().unwrap().to_owned();
    let env = vec![
        ("GW", format!("https://localhost:{}", gw.addr.port())),
        ("SECRET", SECRET.to_owned()),
        ("CA", abs("ca.pem")),
        ("CERT", abs("client.pem")),
        ("KEY", abs("client.key")),
        ("UPSTREAM", up.url()),
    ];
    for (i, block) in blocks.iter().enumerate() {
        let script = format!("{PRELUDE}{block}{EPILOGUE}");
        let (code, out) = bash(d, script, env.clone()).await;
        assert_eq!(code, 0, "sh block #{} failed:\n{block}\n{out}", i + 1);
    }
    gw.stop().await;
}
