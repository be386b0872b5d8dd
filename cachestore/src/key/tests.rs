use super::*;

fn k(n: u8) -> CacheKey {
    CacheKey::from_bytes([n; 32])
}

/// An exec op as the daemon would key it.
fn exec(args: &[&str], env: &[(&str, &str)], inputs: &[CacheKey]) -> CacheKey {
    let mut e = KeyEncoder::new("exec");
    e.str_list("args", args)
        .str_map("env", env.iter().copied())
        .str("cwd", "/src")
        .struct_list(
            "mounts",
            [("/", 0u64), ("/cache", 1)],
            |f, (dest, input)| {
                f.str("dest", dest).u64("input", input);
            },
        )
        .platform("linux", "amd64", "")
        .inputs(inputs);
    e.finish()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- golden vectors: these pin the encoding; a change here must come with a new version ----
// (The hex values were also computed by an independent implementation of the module doc's
// byte-level spec, so the doc and the code agree.)

#[test]
fn golden_encoding_bytes() {
    let mut e = KeyEncoder::new("source");
    e.str("id", "a").u64("n", 1).bool("b", true);
    let want = concat!(
        "73",
        "0000000000000014",
        "6e6f64656b69742d63616368652d6b65792f7631", // STR version
        "73",
        "0000000000000006",
        "736f75726365", // STR "source"
        "3d",
        "0000000000000002",
        "6964",
        "73",
        "0000000000000001",
        "61", // id = "a"
        "3d",
        "0000000000000001",
        "6e",
        "75",
        "0000000000000001", // n = 1
        "3d",
        "0000000000000001",
        "62",
        "62",
        "01", // b = true
    );
    assert_eq!(hex_of(e.encoded()), want);
}

#[test]
fn golden_keys() {
    let empty = KeyEncoder::new("source").finish();
    assert_eq!(empty.to_hex(), GOLDEN_EMPTY_SOURCE);

    let mut e = KeyEncoder::new("source");
    e.str("identifier", "docker-image://docker.io/library/alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000")
        .str_map("attrs", [("image.recordtype", "internal")])
        .platform("linux", "arm64", "v8");
    let img = e.finish();
    assert_eq!(img.to_hex(), GOLDEN_IMAGE_SOURCE);

    let ex = exec(
        &["/bin/sh", "-c", "make"],
        &[("PATH", "/bin"), ("A", "1")],
        &[k(1), k(2)],
    );
    assert_eq!(ex.to_hex(), GOLDEN_EXEC);
    assert_eq!(ex.for_output(0).to_hex(), GOLDEN_EXEC_OUT0);
    assert_eq!(ex.for_output(1).to_hex(), GOLDEN_EXEC_OUT1);

    let mut all = KeyEncoder::new("kinds");
    all.i64("i", -2)
        .bytes("y", &[0, 255])
        .key("k", &k(9))
        .opt_str("none", None)
        .opt_str("some", Some(""))
        .opt_u64("u", Some(7))
        .u64_list("l", [3, 1])
        .structure("s", |f| {
            f.bool("f", false);
        })
        .struct_map("sm", [("b", 2u64), ("a", 1)], |f, v| {
            f.u64("v", v);
        });
    let all = all.finish();
    assert_eq!(all.to_hex(), GOLDEN_ALL_KINDS);
}

const GOLDEN_EMPTY_SOURCE: &str =
    "4902cc349e2f6212821378ffcb38f9dc05fb0d39c76b656083b905ffa9e5b311";
const GOLDEN_IMAGE_SOURCE: &str =
    "c2b0184ddd496083c3c1683d2c0786d99e1b6087b81d9ed12045e86b35efcfa9";
const GOLDEN_EXEC: &str = "9c5bdd03d3f695dc73b5c3ceb04ffb555113ce70d2e1f91e7c32d42984739b37";
const GOLDEN_EXEC_OUT0: &str = "fa46f8a4ad4671b40be2f918fbdfe943e35a1c9a99a81fde99422091ed121180";
const GOLDEN_EXEC_OUT1: &str = "270ba0d320c8bb43fdf6cf5354adfdd04ebbf130d8f6c309da7d4a0c63426008";
const GOLDEN_ALL_KINDS: &str = "5b4e53e3d92e82d199f41ad0fe78160538add133b07c95a7e250124e3115ace5";

// ---- properties ----

#[test]
fn map_order_is_irrelevant() {
    let a = exec(&["x"], &[("A", "1"), ("B", "2"), ("C", "3")], &[k(1)]);
    let b = exec(&["x"], &[("C", "3"), ("A", "1"), ("B", "2")], &[k(1)]);
    assert_eq!(a, b);
    let c = exec(&["x"], &[("A", "2"), ("B", "1"), ("C", "3")], &[k(1)]);
    assert_ne!(a, c, "values swapped between keys");
}

#[test]
fn list_and_field_order_matter() {
    assert_ne!(exec(&["a", "b"], &[], &[]), exec(&["b", "a"], &[], &[]));
    assert_ne!(exec(&[], &[], &[k(1), k(2)]), exec(&[], &[], &[k(2), k(1)]));
    let mut x = KeyEncoder::new("t");
    x.str("a", "1").str("b", "2");
    let mut y = KeyEncoder::new("t");
    y.str("b", "2").str("a", "1");
    assert_ne!(x.finish(), y.finish());
}

#[test]
fn every_change_changes_the_key() {
    let base = || {
        let mut e = KeyEncoder::new("file");
        e.str("path", "/a").u64("mode", 0o644).bool("follow", false);
        e
    };
    let b = base().finish();
    let variants: Vec<KeyEncoder> = vec![
        KeyEncoder::new("exec"),
        {
            let mut e = KeyEncoder::new("file");
            e.str("path", "/b").u64("mode", 0o644).bool("follow", false);
            e
        },
        {
            let mut e = KeyEncoder::new("file");
            e.str("path", "/a").u64("mode", 0o755).bool("follow", false);
            e
        },
        {
            let mut e = KeyEncoder::new("file");
            e.str("path", "/a").u64("mode", 0o644).bool("follow", true);
            e
        },
        {
            let mut e = KeyEncoder::new("file");
            e.str("pat", "h/a").u64("mode", 0o644).bool("follow", false);
            e
        },
        {
            let mut e = base();
            e.str("extra", "");
            e
        },
    ];
    let mut seen = std::collections::HashSet::from([b]);
    for v in variants {
        assert!(seen.insert(v.finish()), "collision");
    }
}

#[test]
fn boundaries_are_unambiguous() {
    // The same bytes split differently between strings, lists and names give different keys.
    let pairs: Vec<(KeyEncoder, KeyEncoder)> = vec![
        (
            {
                let mut e = KeyEncoder::new("t");
                e.str_list("l", ["ab", "c"]);
                e
            },
            {
                let mut e = KeyEncoder::new("t");
                e.str_list("l", ["a", "bc"]);
                e
            },
        ),
        (
            {
                let mut e = KeyEncoder::new("t");
                e.str("a", "").str("b", "");
                e
            },
            {
                let mut e = KeyEncoder::new("t");
                e.str_list("a", [""]).str("b", "");
                e
            },
        ),
        (
            {
                let mut e = KeyEncoder::new("t");
                e.str("x", "1");
                e
            },
            {
                let mut e = KeyEncoder::new("t");
                e.bytes("x", b"1");
                e
            },
        ),
        (
            {
                let mut e = KeyEncoder::new("t");
                e.opt_str("x", None);
                e
            },
            {
                let mut e = KeyEncoder::new("t");
                e.opt_str("x", Some(""));
                e
            },
        ),
        (KeyEncoder::new("ab"), {
            let mut e = KeyEncoder::new("a");
            e.str("b", "");
            e
        }),
    ];
    for (a, b) in pairs {
        assert_ne!(a.encoded(), b.encoded());
        assert_ne!(a.finish(), b.finish());
    }
}

#[test]
fn many_random_like_inputs_do_not_collide() {
    let mut seen = std::collections::HashSet::new();
    for i in 0..2000u64 {
        let mut e = KeyEncoder::new("exec");
        e.str("cwd", &format!("/{}", i % 37))
            .u64("n", i / 37)
            .str_map("env", [(format!("K{}", i % 5), format!("{}", i % 11))]);
        assert!(seen.insert(e.finish()));
    }
}

#[test]
fn outputs_have_distinct_keys() {
    let op = k(3);
    assert_ne!(op.for_output(0), op);
    assert_ne!(op.for_output(0), op.for_output(1));
    assert_ne!(k(4).for_output(0), op.for_output(0));
}

// ---- CacheKey ----

#[test]
fn hex_round_trip() {
    let key = exec(&["x"], &[], &[]);
    let s = key.to_string();
    assert_eq!(s.len(), 64);
    assert_eq!(s.parse::<CacheKey>().unwrap(), key);
    assert!(format!("{key:?}").contains(&s));
    for bad in ["", "zz", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65)] {
        assert!(bad.parse::<CacheKey>().is_err(), "{bad}");
    }
}

#[test]
fn serde_is_hex_in_json_and_bytes_in_postcard() {
    let key = k(0xab);
    let json = serde_json::to_string(&key).unwrap();
    assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
    assert_eq!(serde_json::from_str::<CacheKey>(&json).unwrap(), key);
    let bin = postcard::to_allocvec(&key).unwrap();
    assert_eq!(bin.len(), 33);
    assert_eq!(postcard::from_bytes::<CacheKey>(&bin).unwrap(), key);
    assert!(postcard::from_bytes::<CacheKey>(&[2, 1, 2]).is_err());
}
