//! The sound catalogue: which named prompt is which recorded file, and which Debian package
//! installs that file. Music on hold comes from `asterisk-moh-opsound-wav`, announcements
//! and spoken numbers from `asterisk-core-sounds-en-wav` (the voice of Allison Smith);
//! `scripts/install-deps.sh` installs both, the repository holds none of their files.
//!
//! Names are what the call logic asks for: music on hold of class `c` is `moh-c`
//! ([`music_on_hold_prompt`]), an announcement keeps its Asterisk name (`queue-thankyou`,
//! `agent-loginok`), a number is `digits/<n>`. A name that is also a built-in synthesised
//! prompt (`beep`) replaces it once the catalogue is loaded.
//!
//! Pure: paths are built here, the shell (`shell::sounds`) reads them.

use std::path::PathBuf;

/// Where Debian's `asterisk-moh-opsound-wav` puts its music.
pub const DEFAULT_MOH_DIR: &str = "/usr/share/asterisk/moh";
/// Where Debian's `asterisk-core-sounds-en-wav` puts its prompts.
pub const DEFAULT_SOUNDS_DIR: &str = "/usr/share/asterisk/sounds/en_US_f_Allison";
/// Prefix of music-on-hold prompt names.
pub const MUSIC_ON_HOLD_PREFIX: &str = "moh-";

/// Music-on-hold classes and their file in the music directory.
pub const MUSIC_CLASSES: &[(&str, &str)] = &[
    ("default", "macroform-cold_day.wav"),
    ("morning-coffee", "manolo_camp-morning_coffee.wav"),
];

/// Announcements: each is `<name>.wav` in the sounds directory.
pub const ANNOUNCEMENTS: &[&str] = &[
    // Queue position and hold time ("you are next", "there are 3 calls waiting", ...).
    "queue-thankyou",
    "queue-youarenext",
    "queue-thereare",
    "queue-callswaiting",
    "queue-holdtime",
    "queue-less-than",
    "queue-minutes",
    "queue-seconds",
    "queue-periodic-announce",
    // Agent log-in by PIN.
    "agent-pass",
    "agent-loginok",
    "agent-loggedoff",
    "agent-incorrect",
    "auth-incorrect",
    // Feature codes: ready, paused, refused.
    "activated",
    "de-activated",
    "feature-not-avail-line",
    // General.
    "beep",
    "pbx-invalid",
    "vm-goodbye",
];

/// Spoken numbers (`digits/<n>.wav`): enough to say 0 to 99 (tens and units) and hundreds.
pub fn number_names() -> Vec<String> {
    (0..=20)
        .chain((30..=90).step_by(10))
        .map(|n| format!("digits/{n}"))
        .chain(std::iter::once("digits/hundred".to_string()))
        .collect()
}

/// The prompt name of music-on-hold class `class`.
pub fn music_on_hold_prompt(class: &str) -> String {
    format!("{MUSIC_ON_HOLD_PREFIX}{class}")
}

/// The directories the sounds are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoundsConfig {
    /// Music on hold (default [`DEFAULT_MOH_DIR`]).
    pub moh_dir: PathBuf,
    /// Announcements and numbers (default [`DEFAULT_SOUNDS_DIR`]).
    pub sounds_dir: PathBuf,
}

impl Default for SoundsConfig {
    fn default() -> Self {
        SoundsConfig {
            moh_dir: PathBuf::from(DEFAULT_MOH_DIR),
            sounds_dir: PathBuf::from(DEFAULT_SOUNDS_DIR),
        }
    }
}

/// The Debian package a sound comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoundPackage {
    /// `asterisk-moh-opsound-wav`.
    MusicOnHold,
    /// `asterisk-core-sounds-en-wav`.
    CoreSoundsEnglish,
}

impl SoundPackage {
    /// The package's Debian name.
    pub fn debian_name(self) -> &'static str {
        match self {
            SoundPackage::MusicOnHold => "asterisk-moh-opsound-wav",
            SoundPackage::CoreSoundsEnglish => "asterisk-core-sounds-en-wav",
        }
    }

    /// What its sounds are, for messages.
    pub fn kind(self) -> &'static str {
        match self {
            SoundPackage::MusicOnHold => "music on hold",
            SoundPackage::CoreSoundsEnglish => "announcement",
        }
    }
}

/// One prompt of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoundFile {
    /// Prompt name.
    pub prompt: String,
    /// The WAV file.
    pub path: PathBuf,
    /// Where the file comes from.
    pub package: SoundPackage,
}

/// Every recorded prompt a relay loads, music first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoundLibrary {
    files: Vec<SoundFile>,
}

impl SoundLibrary {
    /// The catalogue with its files in `config`'s directories.
    pub fn new(config: &SoundsConfig) -> SoundLibrary {
        let music = MUSIC_CLASSES.iter().map(|(class, file)| SoundFile {
            prompt: music_on_hold_prompt(class),
            path: config.moh_dir.join(file),
            package: SoundPackage::MusicOnHold,
        });
        let spoken = ANNOUNCEMENTS
            .iter()
            .map(|name| name.to_string())
            .chain(number_names())
            .map(|name| SoundFile {
                path: config.sounds_dir.join(format!("{name}.wav")),
                prompt: name,
                package: SoundPackage::CoreSoundsEnglish,
            });
        SoundLibrary {
            files: music.chain(spoken).collect(),
        }
    }

    /// The prompts and their files.
    pub fn files(&self) -> &[SoundFile] {
        &self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    #[test]
    fn the_debian_catalogue() {
        let library = SoundLibrary::new(&SoundsConfig::default());
        let by_name = |name: &str| {
            library
                .files()
                .iter()
                .find(|f| f.prompt == name)
                .unwrap_or_else(|| panic!("{name} is in the catalogue"))
        };
        let moh = by_name("moh-default");
        assert_eq!(
            moh.path,
            Path::new("/usr/share/asterisk/moh/macroform-cold_day.wav")
        );
        assert_eq!(moh.package.debian_name(), "asterisk-moh-opsound-wav");
        let login = by_name("agent-loginok");
        assert_eq!(
            login.path,
            Path::new("/usr/share/asterisk/sounds/en_US_f_Allison/agent-loginok.wav")
        );
        assert_eq!(login.package.debian_name(), "asterisk-core-sounds-en-wav");
        assert_eq!(
            by_name("digits/7").path,
            Path::new("/usr/share/asterisk/sounds/en_US_f_Allison/digits/7.wav")
        );
        assert_eq!(
            by_name("moh-morning-coffee").package,
            SoundPackage::MusicOnHold
        );
        assert_eq!(library.files().len(), 2 + 20 + 29);
        let names: BTreeSet<&str> = library.files().iter().map(|f| f.prompt.as_str()).collect();
        assert_eq!(names.len(), library.files().len(), "names are unique");
        assert!(
            names
                .iter()
                .all(|n| !n.is_empty() && n.len() <= crate::control::MAX_ID_LEN),
            "every name is a valid prompt name"
        );
        assert!(
            library.files()[..2]
                .iter()
                .all(|f| f.package == SoundPackage::MusicOnHold),
            "music first"
        );
    }

    #[test]
    fn directories_are_configurable() {
        let config = SoundsConfig {
            moh_dir: "/srv/moh".into(),
            sounds_dir: "/srv/en".into(),
        };
        let library = SoundLibrary::new(&config);
        for file in library.files() {
            let dir = match file.package {
                SoundPackage::MusicOnHold => "/srv/moh",
                SoundPackage::CoreSoundsEnglish => "/srv/en",
            };
            assert!(file.path.starts_with(dir), "{file:?}");
        }
        assert_eq!(music_on_hold_prompt("default"), "moh-default");
    }
}
