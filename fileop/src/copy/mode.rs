//! `chmod(1)` modes for copy: `modeStr` ("u+x", "go-w", "a=rX", "755") with umask 0, following
//! the BSD `setmode` rules upstream uses (tonistiigi/dchapes-mode).

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
const RWXU: u32 = 0o700;
const RWXG: u32 = 0o070;
const RWXO: u32 = 0o007;
const STANDARD: u32 = S_ISUID | S_ISGID | RWXU | RWXG | RWXO;
const ALL_X: u32 = 0o111;

#[derive(Debug, Clone, PartialEq)]
enum Cmd {
    Clear(u32),
    Set(u32),
    /// Set these bits when the file is a directory or already executable by anyone.
    X(u32),
    /// Copy the rwx bits of class `from` ('u', 'g' or 'o') onto the target classes.
    Copy {
        from: char,
        targets: [bool; 3],
        clear: bool,
        set: bool,
    },
}

/// A parsed mode: absolute or symbolic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModeSet(Vec<Cmd>);

/// How a copy sets permissions.
#[derive(Debug, Clone)]
pub(crate) enum ModeSpec {
    /// `mode`: exactly these bits (permissions, setuid, setgid, sticky).
    Octal(u32),
    /// `modeStr`: applied to each source entry's mode.
    Symbolic(ModeSet),
}

impl ModeSpec {
    /// The permission bits a copied entry gets, from its source bits.
    pub(crate) fn apply(&self, src_mode: u32, is_dir: bool) -> u32 {
        match self {
            ModeSpec::Octal(m) => m & 0o7777,
            ModeSpec::Symbolic(set) => set.apply(src_mode & 0o7777, is_dir),
        }
    }
}

fn who_bits(c: u8) -> Option<u32> {
    match c {
        b'a' => Some(STANDARD),
        b'u' => Some(S_ISUID | RWXU),
        b'g' => Some(S_ISGID | RWXG),
        b'o' => Some(RWXO),
        _ => None,
    }
}

impl ModeSet {
    /// Parses an absolute (octal) or symbolic mode.
    pub(crate) fn parse(s: &str) -> Result<ModeSet, String> {
        let b = s.as_bytes();
        if b.is_empty() {
            return Err("empty mode".into());
        }
        if b[0].is_ascii_digit() {
            let v = i16::from_str_radix(s, 8).map_err(|_| "not an octal number".to_string())?;
            let v = v as u32;
            if v & !0o7777 != 0 {
                return Err("octal mode out of range".into());
            }
            return Ok(ModeSet(vec![Cmd::Clear(0o7777), Cmd::Set(v)]));
        }
        let syntax = || "invalid symbolic mode".to_string();
        let mut cmds = Vec::new();
        let mut i = 0;
        loop {
            // who
            let mut who = 0u32;
            loop {
                let c = *b.get(i).ok_or_else(syntax)?;
                match who_bits(c) {
                    Some(w) => {
                        who |= w;
                        i += 1;
                    }
                    None => break,
                }
            }
            // one or more actions for this who
            loop {
                let op = *b.get(i).ok_or_else(syntax)?;
                i += 1;
                if !matches!(op, b'+' | b'-' | b'=') {
                    return Err(syntax());
                }
                let mut equal_done = false;
                who &= !S_ISVTX;
                let (mut perm, mut perm_x) = (0u32, 0u32);
                loop {
                    let c = b.get(i).copied().unwrap_or(0);
                    match c {
                        b'r' => perm |= 0o444,
                        b'w' => perm |= 0o222,
                        b'x' => perm |= ALL_X,
                        b'X' if op != b'-' => perm_x = ALL_X,
                        b'X' => perm |= ALL_X,
                        b's' if who == 0 || who & !RWXO != 0 => perm |= S_ISUID | S_ISGID,
                        b's' => {}
                        b't' if who == 0 || who & !RWXO != 0 => {
                            who |= S_ISVTX;
                            perm |= S_ISVTX;
                        }
                        b't' => {}
                        b'u' | b'g' | b'o' => {
                            if perm != 0 {
                                add(&mut cmds, op, who, perm);
                                perm = 0;
                            }
                            if op == b'=' {
                                equal_done = true;
                            }
                            if perm_x != 0 {
                                add(&mut cmds, b'X', who, perm_x);
                                perm_x = 0;
                            }
                            let targets = if who == 0 {
                                [true; 3]
                            } else {
                                [who & 0o400 != 0, who & 0o040 != 0, who & 0o004 != 0]
                            };
                            cmds.push(Cmd::Copy {
                                from: c as char,
                                targets,
                                clear: op != b'+',
                                set: op != b'-',
                            });
                        }
                        _ => {
                            if perm != 0 || (op == b'=' && !equal_done) {
                                add(&mut cmds, op, who, perm);
                            }
                            if perm_x != 0 {
                                add(&mut cmds, b'X', who, perm_x);
                            }
                            break;
                        }
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Ok(ModeSet(cmds));
                }
                if b[i] == b',' {
                    i += 1;
                    break;
                }
            }
        }
    }

    /// Applies the mode to `mode` (12 permission bits) of a file or directory.
    pub(crate) fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let orig = mode;
        let mut m = mode;
        for cmd in &self.0 {
            match cmd {
                Cmd::Clear(bits) => m &= !bits,
                Cmd::Set(bits) => m |= bits,
                Cmd::X(bits) => {
                    if orig & ALL_X != 0 || is_dir {
                        m |= bits;
                    }
                }
                Cmd::Copy {
                    from,
                    targets,
                    clear,
                    set,
                } => {
                    let value = match from {
                        'u' => (m & RWXU) >> 6,
                        'g' => (m & RWXG) >> 3,
                        _ => m & RWXO,
                    };
                    for (k, shift) in [6u32, 3, 0].iter().enumerate() {
                        if !targets[k] {
                            continue;
                        }
                        if *clear {
                            let clr = if *set { 0o7 } else { value };
                            m &= !(clr << shift);
                        }
                        if *set {
                            m |= value << shift;
                        }
                    }
                }
            }
        }
        m & 0o7777
    }
}

fn add(cmds: &mut Vec<Cmd>, op: u8, who: u32, perm: u32) {
    let bits = if who != 0 { who & perm } else { perm };
    match op {
        b'=' => {
            cmds.push(Cmd::Clear(if who != 0 { who } else { STANDARD }));
            cmds.push(Cmd::Set(bits));
        }
        b'+' => cmds.push(Cmd::Set(bits)),
        b'-' => cmds.push(Cmd::Clear(bits)),
        _ => cmds.push(Cmd::X(bits)),
    }
}

#[cfg(test)]
#[path = "mode_tests.rs"]
mod tests;
