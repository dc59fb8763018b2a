//! `wisp init [--stage local|network|final]`: the boot flow (no stage: all three in order). The
//! stages themselves are in [`crate::boot`].

use crate::boot::{self, StageName};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Run only this stage.
    #[arg(long, value_enum)]
    pub stage: Option<StageName>,
    /// A mounted EFI partition to take the MAAS seed from (by default the FAT partitions of
    /// the disks are searched, on the running system).
    #[arg(long, value_name = "DIR")]
    pub esp: Option<std::path::PathBuf>,
    /// A YAML map of MAC address to interface name standing in for the machine's interfaces
    /// when the network configuration is rendered (image tests under --root); by default the
    /// system's own are read.
    #[arg(long, value_name = "NICS")]
    pub interfaces: Option<std::path::PathBuf>,
}

pub fn run(ctx: &Context, args: &InitArgs) -> anyhow::Result<u8> {
    boot::run(
        ctx,
        &boot::Options {
            only: args.stage,
            esp: args.esp.as_deref(),
            interfaces: args.interfaces.as_deref(),
        },
    )
}
