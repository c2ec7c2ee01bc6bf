//! `eif-build`: build the enclave image reproducibly and print its PCRs, or measure an
//! existing image. Both print the JSON of `nitro-cli describe-eif`.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use eif_build::image::{DEFAULT_CMDLINE, DEFAULT_VSOCK_PORT, SigningFiles};
use eif_build::{BuildInputs, DescribeEif};

#[derive(Debug, Parser)]
#[command(
    name = "eif-build",
    version,
    about = "Reproducible AWS Nitro Enclaves images (EIF) and their PCRs, without Docker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the enclave image and print its measurements (nitro-cli describe-eif JSON).
    /// A repeated option takes its last value (except --env, which adds up).
    #[command(args_override_self = true)]
    Build(Box<BuildArgs>),
    /// Print the measurements of an existing image (nitro-cli describe-eif JSON).
    Measure {
        /// The EIF file.
        image: PathBuf,
    },
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// The enclave kernel (bzImage; nitro-cli's blob on an EC2 parent).
    #[arg(long, value_name = "PATH")]
    kernel: PathBuf,
    /// The Nitro init (nitro-cli's `init` blob).
    #[arg(long, value_name = "PATH")]
    init: PathBuf,
    /// The NSM driver module (nitro-cli's `nsm.ko` blob), if the kernel does not build it in.
    #[arg(long, value_name = "PATH")]
    nsm_module: Option<PathBuf>,
    /// The statically linked `enclave` binary.
    #[arg(long, value_name = "PATH")]
    enclave_bin: PathBuf,
    /// The GGUF model.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// The model's SHA-256 (64 hex characters); the build fails if the file differs.
    #[arg(long, value_name = "HEX")]
    model_sha256: String,
    /// The kernel command line (use nitro-cli's `cmdline` blob for nitro-cli's PCR1).
    #[arg(long, default_value = DEFAULT_CMDLINE)]
    cmdline: String,
    /// The vsock port the enclave serves on.
    #[arg(long, default_value_t = DEFAULT_VSOCK_PORT)]
    vsock_port: u32,
    /// An extra NAME=value for the enclave's environment (repeatable; measured into PCR2).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// The image name in the (unmeasured) metadata.
    #[arg(long, default_value = "attested-inference")]
    image_name: String,
    /// The image version in the (unmeasured) metadata.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    image_version: String,
    /// Sign the image with this PEM certificate (measured into PCR8); needs --private-key.
    #[arg(long, value_name = "PEM", requires = "private_key")]
    signing_certificate: Option<PathBuf>,
    /// The certificate's P-384 private key (PEM, PKCS#8 or SEC1).
    #[arg(long, value_name = "PEM", requires = "signing_certificate")]
    private_key: Option<PathBuf>,
    /// Where to write the image.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return Err(format!(
            "--model-sha256 must be 64 hex characters, found {} characters",
            text.len()
        ));
    }
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| format!("--model-sha256 must be 64 hex characters, found {text:?}"))?;
    Ok(out)
}

fn print_json(description: &DescribeEif) -> Result<(), String> {
    let text = serde_json::to_string_pretty(description).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Build(args) => {
            let inputs = BuildInputs {
                kernel: args.kernel,
                init: args.init,
                nsm_module: args.nsm_module,
                enclave_binary: args.enclave_bin,
                model: args.model,
                model_sha256: parse_sha256(&args.model_sha256)?,
                cmdline: args.cmdline,
                vsock_port: args.vsock_port,
                env: args.env,
                image_name: args.image_name,
                image_version: args.image_version,
                signing: match (args.signing_certificate, args.private_key) {
                    (Some(certificate), Some(private_key)) => Some(SigningFiles {
                        certificate,
                        private_key,
                    }),
                    _ => None,
                },
            };
            let built = eif_build::build(&inputs, &args.out).map_err(|e| e.to_string())?;
            eprintln!(
                "wrote {} ({} bytes); nitro-cli run-enclave needs --memory {} or more, {} recommended for this model",
                built.path.display(),
                built.len,
                built.minimum_memory_mib(),
                built.recommended_memory_mib()
            );
            print_json(&built.description)
        }
        Command::Measure { image } => {
            let read = eif_build::read_image_file(&image)
                .map_err(|e| format!("{}: {e}", image.display()))?;
            print_json(&DescribeEif::from_image(&read))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("eif-build: error: {message}");
            ExitCode::FAILURE
        }
    }
}
