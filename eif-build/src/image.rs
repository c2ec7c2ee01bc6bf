//! The enclave image this project runs: two ramdisks in the layout the Nitro `init` expects
//! (the same layout `nitro-cli build-enclave` produces from a Docker image).
//!
//! Boot ramdisk (PCR1, with the kernel and cmdline):
//!
//! | path | mode | what |
//! |---|---|---|
//! | `dev/` | 0755 | mount point |
//! | `init` | 0755 | the Nitro init (`--init`) |
//! | `nsm.ko` | 0755 | the NSM driver (`--nsm-module`, when the kernel does not build it in) |
//!
//! Application ramdisk (PCR2):
//!
//! | path | mode | what |
//! |---|---|---|
//! | `cmd` | 0644 | the command, one argument a line: `/usr/bin/enclave serve --config /etc/enclave/enclave.toml` |
//! | `env` | 0644 | the environment, one `KEY=value` a line |
//! | `rootfs/{dev,proc,run,sys,tmp,var}/` | 0755 | mount points the init uses |
//! | `rootfs/usr/bin/enclave` | 0755 | the enclave binary (statically linked: the root file system has no libc) |
//! | `rootfs/etc/enclave/enclave.toml` | 0444 | the configuration, carrying the expected model hash |
//! | `rootfs/opt/model/model.gguf` | 0444 | the model |
//!
//! `init` reads `/cmd` and `/env`, loads `/nsm.ko`, `chroot`s into `/rootfs` and runs the
//! command. PCR2 therefore covers the binary, the model, the expected model hash and every
//! setting; PCR1 covers only what AWS ships (kernel, cmdline, init, driver).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::cpio::{CpioBuilder, CpioError};
use crate::describe::{BuildMetadata, DescribeEif, ImageMetadata};
use crate::eif::{self, EifError, SectionKind, SectionSource};
use crate::pcr::{Measurements, Pcr};
use crate::sign::{SignError, SigningIdentity};

/// Where the binary lives inside the enclave.
pub const ENCLAVE_BINARY_PATH: &str = "/usr/bin/enclave";
/// Where the configuration lives inside the enclave.
pub const ENCLAVE_CONFIG_PATH: &str = "/etc/enclave/enclave.toml";
/// Where the model lives inside the enclave.
pub const MODEL_PATH: &str = "/opt/model/model.gguf";
/// The vsock port the enclave listens on unless told otherwise.
pub const DEFAULT_VSOCK_PORT: u32 = 5005;

/// The vsock port of the enclave's parent channel (docs/protocol.md §5a): the port after the
/// public one. host-proxy never forwards it; only the parent instance (the operator's relayer)
/// connects to it.
#[must_use]
pub const fn parent_vsock_port(vsock_port: u32) -> u32 {
    vsock_port.saturating_add(1)
}
/// The kernel command line used when none is given (the one the Nitro Enclaves SDK bootstrap
/// uses). For the same PCR1 as `nitro-cli build-enclave`, pass the content of the `cmdline`
/// blob that ships with nitro-cli instead.
pub const DEFAULT_CMDLINE: &str =
    "reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on root=/dev/ram0";
/// The `PATH` given to the enclave process.
pub const ENCLAVE_PATH_ENV: &str = "PATH=/usr/bin:/bin";

const ELF_MACHINE_X86_64: u16 = 62;
const PT_INTERP: u32 = 3;

/// Why an image cannot be built. One variant per failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An input file cannot be read.
    #[error("{what} {}: {source}", .path.display())]
    Input {
        /// Which input.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// An input is not a regular file.
    #[error("{what} {} is not a regular file", .path.display())]
    NotAFile {
        /// Which input.
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The enclave binary is not a 64-bit little-endian ELF executable.
    #[error("the enclave binary {} is not a 64-bit little-endian ELF file", .path.display())]
    NotElf {
        /// The path given.
        path: PathBuf,
    },
    /// The enclave binary is for another processor.
    #[error("the enclave binary {} is for ELF machine {machine}, not x86_64 (62)", .path.display())]
    WrongArchitecture {
        /// The path given.
        path: PathBuf,
        /// Its `e_machine`.
        machine: u16,
    },
    /// The enclave binary needs a dynamic loader the image does not have.
    #[error(
        "the enclave binary {} is dynamically linked (interpreter {interpreter}); the image has no libc: build it statically (scripts/build-enclave-reproducible.sh)",
        .path.display()
    )]
    DynamicallyLinked {
        /// The path given.
        path: PathBuf,
        /// Its `PT_INTERP` string.
        interpreter: String,
    },
    /// The model's SHA-256 is not the one given.
    #[error("the model's SHA-256 is {actual}, not the expected {expected}")]
    ModelHashMismatch {
        /// The hash given.
        expected: String,
        /// The hash of the bytes read.
        actual: String,
    },
    /// The kernel command line is empty or holds a NUL or a line break.
    #[error("the kernel command line must be one non-empty line without NUL bytes")]
    InvalidCmdline,
    /// An `--env` entry is not `NAME=value` with a valid name and a one-line value.
    #[error("environment entry {entry:?} must be NAME=value (NAME: A-Z, 0-9, _) on one line")]
    InvalidEnv {
        /// The entry given.
        entry: String,
    },
    /// The vsock port is 0, or it or the next one (the parent channel's) is the wildcard.
    #[error(
        "vsock port {port} is reserved; use 1..=4294967293 (the next port is the parent channel's)"
    )]
    InvalidVsockPort {
        /// The port given.
        port: u32,
    },
    /// An image name or version is empty or has control characters.
    #[error("the image {what} must be non-empty printable text")]
    InvalidLabel {
        /// `name` or `version`.
        what: &'static str,
    },
    /// A ramdisk cannot be assembled.
    #[error(transparent)]
    Cpio(#[from] CpioError),
    /// The image cannot be written.
    #[error(transparent)]
    Eif(#[from] EifError),
    /// The image cannot be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// An input changed between the pass that measured PCR0 for the signature and the pass
    /// that wrote the image.
    #[error("an input changed while the signed image was being built; build again")]
    ChangedWhileSigning,
    /// The output file cannot be created or moved into place.
    #[error("output {}: {source}", .path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Everything an image is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInputs {
    /// The enclave kernel (bzImage).
    pub kernel: PathBuf,
    /// The Nitro `init`.
    pub init: PathBuf,
    /// The NSM driver module, when the kernel does not build it in.
    pub nsm_module: Option<PathBuf>,
    /// The statically linked `enclave` binary.
    pub enclave_binary: PathBuf,
    /// The GGUF model.
    pub model: PathBuf,
    /// The model's expected SHA-256.
    pub model_sha256: [u8; 32],
    /// The kernel command line.
    pub cmdline: String,
    /// The vsock port the enclave serves on.
    pub vsock_port: u32,
    /// Extra `NAME=value` environment entries for the enclave process (e.g.
    /// `ENCLAVE_MAX_TOKENS=256`); they are measured into PCR2.
    pub env: Vec<String>,
    /// The image name in the metadata.
    pub image_name: String,
    /// The image version in the metadata.
    pub image_version: String,
    /// Sign the image (PCR8) with this certificate and key.
    pub signing: Option<SigningFiles>,
}

/// A PEM certificate and its PEM P-384 private key, for signed images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningFiles {
    /// The certificate (its DER is measured into PCR8).
    pub certificate: PathBuf,
    /// The private key (PKCS#8 or SEC1 PEM).
    pub private_key: PathBuf,
}

impl BuildInputs {
    /// Inputs with the default cmdline, port, name and version and no extra environment.
    #[must_use]
    pub fn new(
        kernel: PathBuf,
        init: PathBuf,
        enclave_binary: PathBuf,
        model: PathBuf,
        model_sha256: [u8; 32],
    ) -> Self {
        Self {
            kernel,
            init,
            nsm_module: None,
            enclave_binary,
            model,
            model_sha256,
            cmdline: DEFAULT_CMDLINE.to_string(),
            vsock_port: DEFAULT_VSOCK_PORT,
            env: Vec::new(),
            image_name: "attested-inference".to_string(),
            image_version: env!("CARGO_PKG_VERSION").to_string(),
            signing: None,
        }
    }
}

/// A built image.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltImage {
    /// Where it was written.
    pub path: PathBuf,
    /// Its length in bytes.
    pub len: u64,
    /// Its PCRs.
    pub measurements: Measurements,
    /// What `measure` prints for it.
    pub description: DescribeEif,
    /// The model's length in bytes.
    pub model_len: u64,
}

impl BuiltImage {
    /// The smallest `--memory` (MiB) `nitro-cli run-enclave` accepts for this image: four
    /// times the image size.
    #[must_use]
    pub fn minimum_memory_mib(&self) -> u64 {
        (4 * self.len).div_ceil(1 << 20)
    }

    /// A `--memory` (MiB) that also leaves room to run: the root file system in RAM (model and
    /// binary), the model read once into the enclave's heap and once more as tensors, and
    /// 512 MiB for the kernel, buffers and the KV cache; at least [`Self::minimum_memory_mib`];
    /// rounded up to 256 MiB.
    #[must_use]
    pub fn recommended_memory_mib(&self) -> u64 {
        let running = (self.len + 2 * self.model_len).div_ceil(1 << 20) + 512;
        running.max(self.minimum_memory_mib()).div_ceil(256) * 256
    }
}

/// The enclave configuration placed in the image (TOML read by `enclave serve --config`).
#[must_use]
pub fn enclave_config(model_sha256: &[u8; 32], vsock_port: u32) -> String {
    format!(
        "# Written by eif-build; measured into PCR2 together with the model.\n\
         model = \"{MODEL_PATH}\"\n\
         model_sha256 = \"{}\"\n\
         listen = \"vsock:{vsock_port}\"\n\
         parent_listen = \"vsock:{}\"\n\
         attester = \"nsm\"\n",
        hex::encode(model_sha256),
        parent_vsock_port(vsock_port)
    )
}

/// The `/cmd` file: one argument a line.
#[must_use]
pub fn enclave_cmd() -> String {
    format!("{ENCLAVE_BINARY_PATH}\nserve\n--config\n{ENCLAVE_CONFIG_PATH}\n")
}

fn check_env(entry: &str) -> Result<(), BuildError> {
    let invalid = || BuildError::InvalidEnv {
        entry: entry.to_string(),
    };
    let (name, value) = entry.split_once('=').ok_or_else(invalid)?;
    let name_ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !name_ok || value.contains(['\n', '\r', '\0']) {
        return Err(invalid());
    }
    Ok(())
}

fn check_label(what: &'static str, text: &str) -> Result<(), BuildError> {
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(BuildError::InvalidLabel { what });
    }
    Ok(())
}

/// The length of a regular input file.
fn file_len(what: &'static str, path: &Path) -> Result<u64, BuildError> {
    let meta = fs::metadata(path).map_err(|source| BuildError::Input {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(BuildError::NotAFile {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(meta.len())
}

/// Checks that `path` is a statically linked x86_64 ELF executable.
pub fn check_static_elf(path: &Path) -> Result<(), BuildError> {
    let bytes = fs::read(path).map_err(|source| BuildError::Input {
        what: "enclave binary",
        path: path.to_path_buf(),
        source,
    })?;
    let not_elf = || BuildError::NotElf {
        path: path.to_path_buf(),
    };
    // e_ident: magic, class 2 (64-bit), data 1 (little-endian).
    if bytes.len() < 64 || bytes[0..4] != *b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err(not_elf());
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let u64_at = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let machine = u16_at(18);
    if machine != ELF_MACHINE_X86_64 {
        return Err(BuildError::WrongArchitecture {
            path: path.to_path_buf(),
            machine,
        });
    }
    let phoff = usize::try_from(u64_at(32)).map_err(|_| not_elf())?;
    let phentsize = usize::from(u16_at(54));
    let phnum = usize::from(u16_at(56));
    if phentsize < 56 {
        return Err(not_elf());
    }
    for index in 0..phnum {
        let at = phoff
            .checked_add(index.checked_mul(phentsize).ok_or_else(not_elf)?)
            .ok_or_else(not_elf)?;
        if at.checked_add(56).is_none_or(|end| end > bytes.len()) {
            return Err(not_elf());
        }
        if u32_at(at) == PT_INTERP {
            let offset = usize::try_from(u64_at(at + 8)).map_err(|_| not_elf())?;
            let size = usize::try_from(u64_at(at + 32)).map_err(|_| not_elf())?;
            let interpreter = offset
                .checked_add(size)
                .and_then(|end| bytes.get(offset..end))
                .map(|raw| {
                    String::from_utf8_lossy(raw)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .unwrap_or_else(|| "<unreadable>".to_string());
            return Err(BuildError::DynamicallyLinked {
                path: path.to_path_buf(),
                interpreter,
            });
        }
    }
    Ok(())
}

/// The metadata section `eif-build` writes: fixed values only.
#[must_use]
pub fn image_metadata(inputs: &BuildInputs) -> ImageMetadata {
    ImageMetadata {
        image_name: inputs.image_name.clone(),
        image_version: inputs.image_version.clone(),
        build: BuildMetadata {
            build_time: "1970-01-01T00:00:00+00:00".to_string(),
            build_tool: "eif-build".to_string(),
            build_tool_version: env!("CARGO_PKG_VERSION").to_string(),
            operating_system: "Linux".to_string(),
            kernel_version: "Unknown".to_string(),
        },
        docker_info: serde_json::Value::Null,
        custom: serde_json::json!({
            "ModelSha256": hex::encode(inputs.model_sha256),
            "VsockPort": inputs.vsock_port,
        }),
    }
}

/// The two ramdisks and the metadata, laid out (files are streamed when written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayout {
    /// Sections in `nitro-cli`'s order: kernel, cmdline, metadata, boot ramdisk, application
    /// ramdisk.
    pub sections: Vec<SectionSource>,
    /// The metadata written.
    pub metadata: ImageMetadata,
    /// The model's length.
    pub model_len: u64,
}

/// Checks the inputs and lays the image out.
pub fn layout(inputs: &BuildInputs) -> Result<ImageLayout, BuildError> {
    if inputs.cmdline.is_empty() || inputs.cmdline.contains(['\0', '\n', '\r']) {
        return Err(BuildError::InvalidCmdline);
    }
    // The port and the parent channel's (the next one) must both be usable: neither 0 nor
    // u32::MAX (VMADDR_PORT_ANY).
    if inputs.vsock_port == 0 || inputs.vsock_port >= u32::MAX - 1 {
        return Err(BuildError::InvalidVsockPort {
            port: inputs.vsock_port,
        });
    }
    for entry in &inputs.env {
        check_env(entry)?;
    }
    check_label("name", &inputs.image_name)?;
    check_label("version", &inputs.image_version)?;
    let kernel_len = file_len("kernel", &inputs.kernel)?;
    let init_len = file_len("init", &inputs.init)?;
    let binary_len = file_len("enclave binary", &inputs.enclave_binary)?;
    let model_len = file_len("model", &inputs.model)?;
    check_static_elf(&inputs.enclave_binary)?;

    let mut boot = CpioBuilder::new();
    boot.add_directory("dev", 0o755)?;
    boot.add_file("init", 0o755, inputs.init.clone(), init_len)?;
    if let Some(module) = &inputs.nsm_module {
        let len = file_len("NSM module", module)?;
        boot.add_file("nsm.ko", 0o755, module.clone(), len)?;
    }

    let mut env = String::new();
    env.push_str(ENCLAVE_PATH_ENV);
    env.push('\n');
    for entry in &inputs.env {
        env.push_str(entry);
        env.push('\n');
    }
    let mut app = CpioBuilder::new();
    app.add_bytes("cmd", 0o644, enclave_cmd().into_bytes())?;
    app.add_bytes("env", 0o644, env.into_bytes())?;
    for dir in ["dev", "proc", "run", "sys", "tmp", "var"] {
        app.add_directory(&format!("rootfs/{dir}"), 0o755)?;
    }
    app.add_file(
        &format!("rootfs{ENCLAVE_BINARY_PATH}"),
        0o755,
        inputs.enclave_binary.clone(),
        binary_len,
    )?;
    app.add_bytes(
        &format!("rootfs{ENCLAVE_CONFIG_PATH}"),
        0o444,
        enclave_config(&inputs.model_sha256, inputs.vsock_port).into_bytes(),
    )?;
    app.add_file(
        &format!("rootfs{MODEL_PATH}"),
        0o444,
        inputs.model.clone(),
        model_len,
    )?;

    let metadata = image_metadata(inputs);
    let metadata_json = serde_json::to_vec(&metadata).map_err(|e| EifError::InvalidMetadata {
        reason: e.to_string(),
    })?;
    let sections = vec![
        SectionSource {
            kind: SectionKind::Kernel,
            chunks: vec![eif::Chunk::File {
                path: inputs.kernel.clone(),
                len: kernel_len,
            }],
        },
        SectionSource::bytes(SectionKind::Cmdline, inputs.cmdline.clone().into_bytes()),
        SectionSource::bytes(SectionKind::Metadata, metadata_json),
        SectionSource {
            kind: SectionKind::Ramdisk,
            chunks: boot.finish(),
        },
        SectionSource {
            kind: SectionKind::Ramdisk,
            chunks: app.finish(),
        },
    ];
    Ok(ImageLayout {
        sections,
        metadata,
        model_len,
    })
}

/// A `Write + Seek` that keeps nothing (the measuring pass of a signed build).
#[derive(Debug, Default)]
struct Discard {
    position: u64,
    len: u64,
}

impl io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.position += buf.len() as u64;
        self.len = self.len.max(self.position);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Seek for Discard {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let base = match to {
            io::SeekFrom::Start(offset) => Some(offset),
            io::SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            io::SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = base.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.position)
    }
}

/// Builds the image into `out` (written to a temporary file beside it and renamed into place
/// only when complete and the model's hash matched). A signed build reads the inputs twice:
/// once to compute PCR0, which the signature covers, once to write.
pub fn build(inputs: &BuildInputs, out: &Path) -> Result<BuiltImage, BuildError> {
    let mut layout = layout(inputs)?;
    let signing = match &inputs.signing {
        Some(files) => Some(SigningIdentity::from_pem_files(
            &files.certificate,
            &files.private_key,
        )?),
        None => None,
    };
    let mut signed_pcr0 = None;
    if let Some(identity) = &signing {
        let measured = eif::write_image(&mut Discard::default(), &layout.sections, 0)?;
        let pcr0 = measured.measurements.pcr0;
        layout.sections.push(SectionSource::bytes(
            SectionKind::Signature,
            identity.signature_section(&pcr0),
        ));
        signed_pcr0 = Some(pcr0);
    }
    let output_error = |source| BuildError::Output {
        path: out.to_path_buf(),
        source,
    };
    let dir = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out
        .file_name()
        .ok_or_else(|| output_error(io::Error::new(io::ErrorKind::InvalidInput, "no file name")))?;
    let temporary = dir.join(format!(
        ".{}.partial-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_checked(inputs, &layout, &temporary, signed_pcr0.as_ref());
    match result {
        Ok(written) => {
            fs::rename(&temporary, out).map_err(|e| {
                let _ = fs::remove_file(&temporary);
                output_error(e)
            })?;
            let metadata_value =
                serde_json::to_value(&layout.metadata).map_err(|e| EifError::InvalidMetadata {
                    reason: e.to_string(),
                })?;
            let description = DescribeEif {
                eif_version: eif::EIF_VERSION,
                measurements: written.measurements.to_describe_json(),
                is_signed: signed_pcr0.is_some(),
                check_crc: true,
                signature_check: signed_pcr0.map(|_| true),
                image_name: Some(layout.metadata.image_name.clone()),
                image_version: Some(layout.metadata.image_version.clone()),
                metadata: Some(crate::describe::flatten_metadata(&metadata_value)),
            };
            Ok(BuiltImage {
                path: out.to_path_buf(),
                len: written.len,
                measurements: written.measurements,
                description,
                model_len: layout.model_len,
            })
        }
        Err(error) => {
            let _ = fs::remove_file(&temporary);
            Err(error)
        }
    }
}

fn write_checked(
    inputs: &BuildInputs,
    layout: &ImageLayout,
    temporary: &Path,
    signed_pcr0: Option<&Pcr>,
) -> Result<eif::WrittenImage, BuildError> {
    let file = fs::File::create(temporary).map_err(|source| BuildError::Output {
        path: temporary.to_path_buf(),
        source,
    })?;
    let mut writer = io::BufWriter::with_capacity(1 << 20, file);
    let written = eif::write_image(&mut writer, &layout.sections, 0)?;
    let file = writer.into_inner().map_err(|e| BuildError::Output {
        path: temporary.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(|source| BuildError::Output {
        path: temporary.to_path_buf(),
        source,
    })?;
    // The model's hash is checked on exactly the bytes that went into the image.
    let model_digest = written
        .file_sha256
        .iter()
        .rev()
        .find(|(path, _)| *path == inputs.model)
        .map(|(_, digest)| *digest)
        .unwrap_or_default();
    if model_digest != inputs.model_sha256 {
        return Err(BuildError::ModelHashMismatch {
            expected: hex::encode(inputs.model_sha256),
            actual: hex::encode(model_digest),
        });
    }
    if signed_pcr0.is_some_and(|pcr0| *pcr0 != written.measurements.pcr0) {
        return Err(BuildError::ChangedWhileSigning);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_entries_are_checked() {
        for good in ["RUST_LOG=info", "ENCLAVE_MAX_TOKENS=256", "A=", "X1=a=b"] {
            check_env(good).unwrap();
        }
        for bad in [
            "",
            "novalue",
            "lower=x",
            "1A=x",
            "A-B=x",
            "A=line\nbreak",
            "=x",
        ] {
            assert!(check_env(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn config_and_cmd_text() {
        let config = enclave_config(&[0xab; 32], 5005);
        assert!(config.contains(&format!("model_sha256 = \"{}\"", "ab".repeat(32))));
        assert!(config.contains("listen = \"vsock:5005\""));
        assert!(config.contains("parent_listen = \"vsock:5006\""));
        assert!(config.contains("attester = \"nsm\""));
        assert_eq!(
            enclave_cmd(),
            "/usr/bin/enclave\nserve\n--config\n/etc/enclave/enclave.toml\n"
        );
    }

    #[test]
    fn memory_advice() {
        let image = BuiltImage {
            path: PathBuf::new(),
            len: 130 << 20,
            measurements: Measurements {
                pcr0: [0; 48],
                pcr1: [0; 48],
                pcr2: [0; 48],
                pcr8: None,
            },
            description: DescribeEif {
                eif_version: 4,
                measurements: crate::pcr::MeasurementsJson {
                    hash_algorithm: String::new(),
                    pcr0: String::new(),
                    pcr1: String::new(),
                    pcr2: String::new(),
                    pcr8: None,
                },
                is_signed: false,
                check_crc: true,
                signature_check: None,
                image_name: None,
                image_version: None,
                metadata: None,
            },
            model_len: 100 << 20,
        };
        assert_eq!(image.minimum_memory_mib(), 520);
        // 130 + 200 + 512 = 842 -> 1024.
        assert_eq!(image.recommended_memory_mib(), 1024);
    }
}
