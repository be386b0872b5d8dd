//! Unit tests of the parent module.
use super::*;

fn ap(s: &str, mode: u32, dir: bool) -> u32 {
    ModeSet::parse(s).unwrap().apply(mode, dir)
}

#[test]
fn symbolic_modes() {
    assert_eq!(ap("755", 0o600, false), 0o755);
    assert_eq!(ap("4755", 0o600, false), 0o4755);
    assert_eq!(ap("u+x", 0o644, false), 0o744);
    assert_eq!(ap("+x", 0o644, false), 0o755);
    assert_eq!(ap("go-w", 0o666, false), 0o644);
    assert_eq!(ap("a=rX", 0o600, true), 0o555);
    assert_eq!(ap("a=rX", 0o600, false), 0o444);
    assert_eq!(ap("a=rX", 0o700, false), 0o555);
    assert_eq!(ap("u=rwx,g=rx,o=", 0o777, false), 0o750);
    assert_eq!(ap("go=u-w", 0o700, false), 0o755);
    assert_eq!(ap("g=u", 0o640, false), 0o660);
    assert_eq!(ap("u+s,+t", 0o755, false), 0o5755);
    assert_eq!(ap("o+s", 0o755, false), 0o755);
    assert_eq!(ap("u+x,g+w", 0o600, false), 0o720);
    assert_eq!(ap("u-x+w", 0o500, false), 0o600);
    assert_eq!(ap("a-X", 0o755, false), 0o644);
    assert_eq!(ap("=X", 0o700, false), 0o111);
    assert_eq!(ap("u=X", 0o600, true), 0o100);
    for bad in ["", "u", "q+x", "u+x,", "8", "77777", "u*x"] {
        assert!(ModeSet::parse(bad).is_err(), "{bad:?} should fail");
    }
}
