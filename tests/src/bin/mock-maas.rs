//! `mock-maas`: run the mock MAAS metadata service for trying a wisp image or config.

use std::path::PathBuf;

use clap::Parser;
use mock_maas::{Faults, MachinesFile, MockMaas, TimestampCheck};

/// A mock MAAS metadata service (see the README, "Trying an image against mock-maas").
#[derive(Parser, Debug)]
#[command(name = "mock-maas", version)]
struct Args {
    /// The machines file (YAML: machines, user_tokens, files, enlistment_user_data).
    #[arg(long, short = 'm')]
    machines: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5248")]
    listen: std::net::SocketAddr,
    /// Write a wisp.yaml for the first machine (datasource and reporting) to this path.
    #[arg(long)]
    write_wisp_config: Option<PathBuf>,
    /// The server's clock runs this many seconds ahead (negative: behind).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    clock_offset: i64,
    /// Answer the first N requests with 503.
    #[arg(long, default_value_t = 0)]
    fail_503: u32,
    /// Retry-After seconds on those 503 answers.
    #[arg(long)]
    retry_after: Option<u64>,
    /// Drop the first N connections without an answer.
    #[arg(long, default_value_t = 0)]
    drop_connections: u32,
    /// Delay every answer by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Gzip answers when the client accepts it (as MAAS ≤ 3.0 may).
    #[arg(long)]
    gzip: bool,
    /// Refuse timestamps 300 s off in either direction (MAAS refuses only old ones).
    #[arg(long)]
    strict_timestamps: bool,
    /// Keep the state (machines, events, requests) as JSON in this file, rewritten after every
    /// request.
    #[arg(long)]
    state_file: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let file = MachinesFile::load(&args.machines)?;
    let first = file.machines.first().cloned();
    let mut mock = MockMaas::start_on(args.listen, file)?;
    if let Some(path) = &args.state_file {
        mock.set_state_file(path.clone());
    }
    mock.set_faults(Faults {
        clock_offset_secs: args.clock_offset,
        fail_503: args.fail_503,
        retry_after_secs: args.retry_after,
        drop_connections: args.drop_connections,
        delay_ms: args.delay_ms,
        gzip: args.gzip,
        strip_authorization: false,
        timestamp_check: if args.strict_timestamps {
            TimestampCheck::Both
        } else {
            TimestampCheck::Past
        },
        ..Default::default()
    });
    println!("mock-maas: metadata service at {}", mock.metadata_url());
    println!(
        "mock-maas: state (machines, events, requests) at http://{}/_mock/state",
        mock.addr()
    );
    if let (Some(path), Some(m)) = (&args.write_wisp_config, first) {
        let cfg = format!(
            "# wisp configuration for mock machine {id}\n\
             datasource_list: [MAAS]\n\
             datasource:\n  MAAS:\n    metadata_url: {url}\n    consumer_key: {ck}\n    token_key: {tk}\n    token_secret: {ts}\n    max_wait: 30\n\
             reporting:\n  maas:\n    type: webhook\n    endpoint: {status}\n    consumer_key: {ck}\n    token_key: {tk}\n    token_secret: {ts}\n",
            id = m.system_id,
            url = mock.metadata_url(),
            status = mock.status_url(&m.system_id),
            ck = m.consumer_key,
            tk = m.token_key,
            ts = m.token_secret,
        );
        write_private(path, &cfg)?;
        println!("mock-maas: wrote {}", path.display());
    }
    // Serve until killed.
    loop {
        std::thread::park();
    }
}

/// The config holds the machine's token: keep it owner-only.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}
