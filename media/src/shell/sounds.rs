//! Loading the recorded sounds at start: every file of the [`SoundLibrary`] is read here,
//! parsed by the pure [`parse_wav`] and registered as a prompt of the relay
//! ([`Relay::register_prompt`]). A missing, unreadable or unusable file stops the start with
//! a [`SoundLoadError`] naming the file and the Debian package that installs it.
//!
//! The files are decoded once, here; prompts stay 8 kHz PCM in memory and are encoded to
//! the leg's G.711 law frame by frame at playout ([`crate::playout`]).

use crate::control::Relay;
use crate::sound_library::{SoundFile, SoundLibrary};
use crate::sounds::{parse_wav, SAMPLE_RATE_HZ};
use std::path::PathBuf;
use std::time::Duration;

/// Why the sounds could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SoundLoadError {
    /// The file is not there.
    #[error(
        "{kind} {} is missing: install Debian's {package} \
         (apt-get install {package}; scripts/install-deps.sh does)",
        .path.display()
    )]
    Missing {
        /// "music on hold" or "announcement".
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// The Debian package that installs it.
        package: &'static str,
    },
    /// The file is there but cannot be read.
    #[error(
        "{kind} {} cannot be read ({source}): it comes from Debian's {package} \
         (apt-get install --reinstall {package})",
        .path.display()
    )]
    Unreadable {
        /// "music on hold" or "announcement".
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// The Debian package that installs it.
        package: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a sound the relay can play (not 8 kHz 16-bit mono PCM, too long).
    #[error(
        "{kind} {} is not usable ({reason}): the relay plays the 8 kHz WAV files of \
         Debian's {package} (apt-get install --reinstall {package})",
        .path.display()
    )]
    Unusable {
        /// "music on hold" or "announcement".
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// The Debian package that installs it.
        package: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// What [`load`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedSounds {
    /// Prompts registered.
    pub prompts: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Samples registered (8 kHz).
    pub samples: u64,
    /// Time spent reading and decoding.
    pub elapsed: Duration,
}

impl LoadedSounds {
    /// Seconds of audio registered.
    pub fn audio_seconds(&self) -> u64 {
        self.samples / u64::from(SAMPLE_RATE_HZ)
    }
}

fn load_one(relay: &mut Relay, file: &SoundFile) -> Result<(u64, u64), SoundLoadError> {
    let kind = file.package.kind();
    let package = file.package.debian_name();
    let path = || file.path.clone();
    let bytes = std::fs::read(&file.path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SoundLoadError::Missing {
                kind,
                path: path(),
                package,
            }
        } else {
            SoundLoadError::Unreadable {
                kind,
                path: path(),
                package,
                source,
            }
        }
    })?;
    let unusable = |reason: String| SoundLoadError::Unusable {
        kind,
        path: path(),
        package,
        reason,
    };
    let samples = parse_wav(&bytes).map_err(|error| unusable(error.to_string()))?;
    let count = samples.len() as u64;
    relay
        .register_prompt(&file.prompt, samples)
        .map_err(|refusal| unusable(refusal.to_string()))?;
    Ok((bytes.len() as u64, count))
}

/// Reads every file of `library` and registers it in `relay` under its prompt name; stops
/// at the first file that fails.
// The shell measures its own start-up (STYLE.md: time is read in shells).
#[allow(clippy::disallowed_methods)]
pub fn load(relay: &mut Relay, library: &SoundLibrary) -> Result<LoadedSounds, SoundLoadError> {
    let started = std::time::Instant::now();
    let mut loaded = LoadedSounds {
        prompts: 0,
        bytes: 0,
        samples: 0,
        elapsed: Duration::ZERO,
    };
    // Bound: the catalogue's files, a fixed list.
    for file in library.files() {
        let (bytes, samples) = load_one(relay, file)?;
        loaded.prompts += 1;
        loaded.bytes += bytes;
        loaded.samples += samples;
    }
    loaded.elapsed = started.elapsed();
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::RelayConfig;
    use crate::leg::LatchPolicy;
    use crate::sound_library::{SoundPackage, SoundsConfig};
    use std::path::Path;

    fn relay() -> Relay {
        Relay::new(RelayConfig {
            advertised_ip: "203.0.113.1".parse().expect("ip"),
            first_port: 40000,
            last_port: 40009,
            latch: LatchPolicy::default(),
        })
        .expect("relay")
    }

    /// A mono 8 kHz 16-bit WAV of `samples`.
    fn wav(samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut out = b"RIFF".to_vec();
        out.extend((36 + data.len() as u32).to_le_bytes());
        out.extend(b"WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00");
        out.extend(b"\x80\x3e\x00\x00\x02\x00\x10\x00data");
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        out
    }

    /// Every file of the catalogue in `root`/moh and `root`/en; file `i` holds `i + 1`
    /// samples of value `i`.
    fn install(root: &Path) -> SoundLibrary {
        let config = SoundsConfig {
            moh_dir: root.join("moh"),
            sounds_dir: root.join("en"),
        };
        let library = SoundLibrary::new(&config);
        for (i, file) in library.files().iter().enumerate() {
            let parent = file.path.parent().expect("a file in a directory");
            std::fs::create_dir_all(parent).expect("mkdir");
            std::fs::write(&file.path, wav(&vec![i as i16; i + 1])).expect("write");
        }
        library
    }

    #[test]
    fn every_file_becomes_its_prompt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let library = install(dir.path());
        let mut relay = relay();
        let builtin = relay.prompt_count();
        let loaded = load(&mut relay, &library).expect("loads");
        let n = library.files().len();
        assert_eq!(loaded.prompts, n);
        assert_eq!(loaded.samples, (n * (n + 1) / 2) as u64);
        assert_eq!(loaded.bytes, (n * 44 + n * (n + 1)) as u64);
        for (i, file) in library.files().iter().enumerate() {
            assert_eq!(
                relay.prompt(&file.prompt),
                Some(&vec![i as i16; i + 1][..]),
                "{}",
                file.prompt
            );
        }
        // "beep" is both built in and recorded: the recording replaces the synthesised one.
        assert_eq!(relay.prompt_count(), builtin + n - 1);
    }

    #[test]
    fn failures_name_the_file_and_the_package() {
        let dir = tempfile::tempdir().expect("tempdir");
        let library = install(dir.path());
        let files = library.files();
        let music = &files[0];
        let spoken = files
            .iter()
            .find(|f| f.prompt == "agent-loginok")
            .expect("in the catalogue");
        assert_eq!(spoken.package, SoundPackage::CoreSoundsEnglish);

        std::fs::remove_file(&spoken.path).expect("remove");
        let error = load(&mut relay(), &library).expect_err("a file is missing");
        assert!(matches!(error, SoundLoadError::Missing { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "announcement {} is missing: install Debian's asterisk-core-sounds-en-wav \
                 (apt-get install asterisk-core-sounds-en-wav; scripts/install-deps.sh does)",
                spoken.path.display()
            )
        );

        // A directory where the file should be cannot be read.
        std::fs::create_dir(&spoken.path).expect("mkdir");
        let error = load(&mut relay(), &library).expect_err("unreadable");
        assert!(
            matches!(error, SoundLoadError::Unreadable { .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("apt-get install --reinstall asterisk-core-sounds-en-wav"),
            "{error}"
        );

        // 16 kHz music is refused, not resampled.
        let mut fast = wav(&[1, 2, 3, 4]);
        fast[24..28].copy_from_slice(&16000u32.to_le_bytes());
        std::fs::write(&music.path, fast).expect("write");
        let error = load(&mut relay(), &library).expect_err("unusable");
        assert_eq!(
            error.to_string(),
            format!(
                "music on hold {} is not usable (16000 Hz: only 8000 Hz is loaded (sounds are \
                 not resampled)): the relay plays the 8 kHz WAV files of Debian's \
                 asterisk-moh-opsound-wav (apt-get install --reinstall asterisk-moh-opsound-wav)",
                music.path.display()
            )
        );
    }
}
