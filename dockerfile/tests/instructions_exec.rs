//! Typed RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed assumption fails the test

use std::time::Duration;

use nodekit_dockerfile::{
    parse, CommandLine, Device, InstructionKind as K, NetworkMode, SecurityMode,
};

/// Parses `FROM base` + `line` and returns the instruction's kind.
fn one(line: &str) -> K {
    let df = parse(&format!("FROM base\n{line}\n")).unwrap_or_else(|e| panic!("{line}: {e}"));
    df.stages[0].instructions[0].kind.clone()
}

fn shell(cmd: &str) -> CommandLine {
    CommandLine {
        args: vec![cmd.into()],
        prepend_shell: true,
    }
}

fn exec(args: &[&str]) -> CommandLine {
    CommandLine {
        args: args.iter().map(|a| a.to_string()).collect(),
        prepend_shell: false,
    }
}

#[test]
fn run_forms_and_flags() {
    let K::Run(r) = one("RUN --network=none --security=insecure --mount=type=cache,target=/c --mount=type=secret,id=s --device=/dev/fuse echo hi") else { panic!() };
    assert_eq!(r.command, shell("echo hi"));
    assert_eq!(
        (r.network, r.security),
        (NetworkMode::None, SecurityMode::Insecure)
    );
    let raws: Vec<&str> = r.mounts.iter().map(|m| m.raw.as_str()).collect();
    assert_eq!(raws, ["type=cache,target=/c", "type=secret,id=s"]);
    assert_eq!(
        r.devices,
        [Device {
            name: "/dev/fuse".into(),
            required: false
        }]
    );
    assert_eq!(r.flags_used, ["network", "security", "mount", "device"]);
    let K::Run(r) = one("RUN [\"sh\", \"-c\", \"echo $HOME\"]") else {
        panic!()
    };
    assert_eq!(
        (r.command, r.network, r.security),
        (
            exec(&["sh", "-c", "echo $HOME"]),
            NetworkMode::Default,
            SecurityMode::Sandbox
        )
    );
    let K::Run(r) = one("RUN --network=host [\"a\"") else {
        panic!()
    };
    assert_eq!(
        r.command,
        shell("[\"a\""),
        "invalid JSON falls back to shell form"
    );
    let K::Run(r) = one("RUN") else { panic!() };
    assert_eq!(
        r.command,
        CommandLine {
            args: vec![],
            prepend_shell: true
        }
    );
    let K::Run(r) = one("RUN --mount=\"type=bind,source=a b,target=/x\" ls") else {
        panic!()
    };
    assert_eq!(r.mounts[0].raw, "type=bind,source=a b,target=/x");
}

#[test]
fn cmd_entrypoint_shell() {
    assert_eq!(one("CMD [\"a\", \"b\"]"), K::Cmd(exec(&["a", "b"])));
    assert_eq!(one("CMD echo  $X"), K::Cmd(shell("echo  $X")));
    assert_eq!(one("CMD []"), K::Cmd(exec(&[])));
    assert_eq!(
        one("ENTRYPOINT [\"/bin/app\"]"),
        K::Entrypoint(exec(&["/bin/app"]))
    );
    assert_eq!(one("ENTRYPOINT exec app"), K::Entrypoint(shell("exec app")));
    assert_eq!(
        one("SHELL [\"powershell\", \"-command\"]"),
        K::Shell(vec!["powershell".into(), "-command".into()])
    );
}

#[test]
fn healthcheck() {
    let K::Healthcheck(h) = one("HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=500ms --retries=3 CMD curl -f http://x/ || exit 1") else { panic!() };
    assert_eq!(h.test, ["CMD-SHELL", "curl -f http://x/ || exit 1"]);
    assert_eq!(
        (h.interval, h.timeout),
        (Duration::from_secs(5), Duration::from_secs(3))
    );
    assert_eq!(
        (h.start_period, h.start_interval, h.retries),
        (Duration::from_secs(60), Duration::from_millis(500), 3)
    );
    let K::Healthcheck(h) = one("HEALTHCHECK --timeout=0s CMD [\"/check\", \"-q\"]") else {
        panic!()
    };
    assert_eq!(
        (h.test.clone(), h.timeout, h.retries),
        (
            vec!["CMD".to_string(), "/check".into(), "-q".into()],
            Duration::ZERO,
            0
        )
    );
    let K::Healthcheck(h) = one("HEALTHCHECK none") else {
        panic!()
    };
    assert_eq!(h.test, ["NONE"]);
    let K::Healthcheck(h) = one("HEALTHCHECK --bogus NONE") else {
        panic!()
    };
    assert_eq!(h.test, ["NONE"], "flags are not checked for NONE");
}

#[test]
fn onbuild() {
    let K::Onbuild(o) = one("ONBUILD RUN --mount=type=cache,target=/c make") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN --mount=type=cache,target=/c make");
    let trigger = o.trigger.unwrap_or_else(|e| panic!("{e}"));
    let K::Run(r) = &trigger.kind else { panic!() };
    assert_eq!(r.mounts[0].raw, "type=cache,target=/c");
    let df =
        parse("FROM a\n  onbuild   COPY <<EOF /x\nhi\nEOF\n").unwrap_or_else(|e| panic!("{e}"));
    let inst = &df.stages[0].instructions[0];
    let K::Onbuild(o) = &inst.kind else { panic!() };
    assert_eq!(o.expression, "COPY <<EOF /x\nhi\nEOF");
    let Ok(t) = &o.trigger else { panic!() };
    assert!(matches!(&t.kind, K::Copy(c) if c.contents[0].data == "hi\n"));
    assert_eq!((inst.start_line, inst.end_line), (2, 4));
    let K::Onbuild(o) = one("ONBUILD BOGUS x") else {
        panic!()
    };
    assert_eq!(
        o.trigger.map_err(|e| e.to_string()),
        Err("Dockerfile:2: unknown instruction: BOGUS".into())
    );
}
