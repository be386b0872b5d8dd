//! Instructions that only change the image config (and the variables): ENV, ARG, LABEL, USER,
//! EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER.
//! History lines are written as upstream writes them (Go's `%v` and `%q` of the values).

use nodekit_dockerfile::{ArgDef, CommandLine, HealthcheckInstruction, InstructionKind, KeyValue};
use serde_json::{json, Value};

use super::stage::StageBuilder;
use crate::solver::SolveError;

pub fn apply(
    stage: &mut StageBuilder<'_>,
    kind: &InstructionKind,
    original: &str,
) -> Result<(), SolveError> {
    match kind {
        InstructionKind::Env(pairs) => env(stage, pairs),
        InstructionKind::Arg(args) => arg(stage, args),
        InstructionKind::Label(pairs) => label(stage, pairs),
        InstructionKind::User(user) => {
            stage.state = stage.state.user(user.clone());
            stage.image.set("User", json!(user));
            stage.image.add_history(&format!("USER {user}"), true);
        }
        InstructionKind::Expose(ports) => expose(stage, ports)?,
        InstructionKind::Volume(paths) => {
            for path in paths {
                stage.image.insert_into("Volumes", path, json!({}));
            }
            stage
                .image
                .add_history(&format!("VOLUME [{}]", paths.join(" ")), true);
        }
        InstructionKind::Cmd(command) => {
            command_field(stage, "Cmd", command);
            stage.cmd_set = true;
        }
        InstructionKind::Entrypoint(command) => {
            command_field(stage, "Entrypoint", command);
            // As upstream: a new ENTRYPOINT drops a CMD inherited from the base, not one set here.
            if !stage.cmd_set {
                stage.image.set("Cmd", Value::Null);
            }
        }
        InstructionKind::Shell(shell) => {
            stage.image.set("Shell", json!(shell));
            stage
                .image
                .add_history(&format!("SHELL [{}]", shell.join(" ")), true);
        }
        InstructionKind::StopSignal(signal) => {
            if !valid_signal(signal) {
                return Err(stage.scope.error(format!("invalid signal: {signal}")));
            }
            stage.image.set("StopSignal", json!(signal));
            stage
                .image
                .add_history(&format!("STOPSIGNAL {signal}"), true);
        }
        InstructionKind::Healthcheck(check) => healthcheck(stage, check),
        InstructionKind::Onbuild(onbuild) => {
            // Recorded for images built FROM this one; no history, as upstream.
            let mut triggers = stage.image.strings("OnBuild");
            triggers.push(onbuild.expression.clone());
            stage.image.set("OnBuild", json!(triggers));
        }
        InstructionKind::Maintainer(name) => {
            stage.image.set_top("author", json!(name));
            stage.image.add_history(&format!("MAINTAINER {name}"), true);
        }
        _ => {
            return Err(stage
                .scope
                .error(format!("unexpected instruction {original}")))
        }
    }
    Ok(())
}

fn env(stage: &mut StageBuilder<'_>, pairs: &[KeyValue]) {
    for pair in pairs {
        stage.scope.set_env(&pair.key, &pair.value);
        stage.image.set_env(&pair.key, &pair.value);
        stage.state = stage.state.env(pair.key.clone(), pair.value.clone());
    }
    stage
        .image
        .add_history(&format!("ENV {}", pairs_text(pairs)), true);
}

/// ARG: declared with the build's value or the default; history shows the value in effect.
fn arg(stage: &mut StageBuilder<'_>, args: &[ArgDef]) {
    let mut names = Vec::new();
    for arg in args {
        stage.scope.declare(&arg.key, arg.default.as_deref());
        names.push(match stage.scope.declared.get(&arg.key) {
            Some(Some(value)) => format!("{}={value}", arg.key),
            _ => arg.key.clone(),
        });
    }
    stage
        .image
        .add_history(&format!("ARG {}", names.join(" ")), true);
}

fn label(stage: &mut StageBuilder<'_>, pairs: &[KeyValue]) {
    for pair in pairs {
        stage
            .image
            .insert_into("Labels", &pair.key, json!(pair.value));
    }
    stage
        .image
        .add_history(&format!("LABEL {}", pairs_text(pairs)), true);
}

/// `k=v k2=v2`, as ENV and LABEL history lines show their pairs.
fn pairs_text(pairs: &[KeyValue]) -> String {
    let text: Vec<String> = pairs
        .iter()
        .map(|p| format!("{}={}", p.key, p.value))
        .collect();
    text.join(" ")
}

fn expose(stage: &mut StageBuilder<'_>, ports: &[String]) -> Result<(), SolveError> {
    let mut names = Vec::new();
    for raw in ports {
        for word in stage.scope.expand_words(raw)? {
            names.extend(port_specs(&word).map_err(|e| stage.scope.error(e))?);
        }
    }
    names.sort();
    names.dedup();
    for port in &names {
        stage.image.insert_into("ExposedPorts", port, json!({}));
    }
    stage
        .image
        .add_history(&format!("EXPOSE [{}]", names.join(" ")), true);
    Ok(())
}

/// `80`, `53/UDP`, `8000-8002` → `80/tcp`, `53/udp`, `8000/tcp 8001/tcp 8002/tcp`.
fn port_specs(word: &str) -> Result<Vec<String>, String> {
    // `ip:hostPort:containerPort`: only the container port counts (upstream lints, not errors).
    let word = word.rsplit(':').next().unwrap_or(word);
    let (ports, protocol) = match word.split_once('/') {
        Some((ports, protocol)) => (ports, protocol.to_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid port: {word:?}: invalid proto: {protocol}"));
    }
    let number = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid containerPort: {p}"))
    };
    let (first, last) = match ports.split_once('-') {
        Some((first, last)) => (number(first)?, number(last)?),
        None => (number(ports)?, number(ports)?),
    };
    if last < first {
        return Err(format!("invalid range specified for container: {ports}"));
    }
    Ok((first..=last).map(|p| format!("{p}/{protocol}")).collect())
}

/// A signal name (`SIGTERM`, `TERM`, `SIGRTMIN+3`) or number, as upstream accepts them.
fn valid_signal(signal: &str) -> bool {
    if let Ok(number) = signal.parse::<u32>() {
        return (1..=64).contains(&number);
    }
    let name = signal.to_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    if name.starts_with("SIGRTMIN") || name.starts_with("SIGRTMAX") {
        return true;
    }
    name.parse::<nix::sys::signal::Signal>().is_ok()
}

/// CMD or ENTRYPOINT: exec form as given, shell form through the stage's shell.
fn command_field(stage: &mut StageBuilder<'_>, field: &str, command: &CommandLine) {
    let args: Vec<String> = match command.shell_command() {
        Some(cmd) => stage.shell().into_iter().chain([cmd.to_string()]).collect(),
        None => command.args.clone(),
    };
    let quoted: Vec<String> = args
        .iter()
        .map(|a| nodekit_dockerfile::go_quote(a))
        .collect();
    stage.image.add_history(
        &format!("{} [{}]", field.to_uppercase(), quoted.join(" ")),
        true,
    );
    stage.image.set(field, json!(args));
}

fn healthcheck(stage: &mut StageBuilder<'_>, check: &HealthcheckInstruction) {
    let mut value = json!({"Test": check.test});
    let durations = [
        ("Interval", check.interval),
        ("Timeout", check.timeout),
        ("StartPeriod", check.start_period),
        ("StartInterval", check.start_interval),
    ];
    for (key, duration) in durations {
        if !duration.is_zero() {
            value[key] = json!(duration.as_nanos() as u64);
        }
    }
    if check.retries > 0 {
        value["Retries"] = json!(check.retries);
    }
    stage.image.set("Healthcheck", value);
    let history = format!(
        "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        check.test.join(" "),
        go_duration(check.interval),
        go_duration(check.timeout),
        go_duration(check.start_period),
        go_duration(check.start_interval),
        check.retries
    );
    stage.image.add_history(&history, true);
}

/// Go's `time.Duration` text for the durations a HEALTHCHECK takes (`30s`, `1m30s`, `500ms`).
fn go_duration(duration: std::time::Duration) -> String {
    let (secs, millis) = (duration.as_secs(), duration.subsec_millis());
    if secs == 0 && millis > 0 {
        return format!("{millis}ms");
    }
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    let fraction = match millis {
        0 => String::new(),
        m => format!(".{}", format!("{m:03}").trim_end_matches('0')),
    };
    match (hours, minutes) {
        (0, 0) => format!("{seconds}{fraction}s"),
        (0, m) => format!("{m}m{seconds}{fraction}s"),
        (h, m) => format!("{h}h{m}m{seconds}{fraction}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_durations_as_upstream_prints_them() {
        assert_eq!(
            port_specs("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(port_specs("53/UDP").unwrap(), ["53/udp"]);
        assert!(port_specs("http").is_err());
        assert_eq!(go_duration(std::time::Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(std::time::Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(std::time::Duration::ZERO), "0s");
        assert_eq!(go_duration(std::time::Duration::from_millis(1500)), "1.5s");
    }
}
