//! Small helpers on the instruction types.

use super::types::{CommandLine, Instruction, InstructionKind};

impl CommandLine {
    /// Exec (JSON) form.
    pub fn is_exec(&self) -> bool {
        !self.prepend_shell
    }

    /// The command text in shell form.
    pub fn shell_command(&self) -> Option<&str> {
        match (self.prepend_shell, self.args.as_slice()) {
            (true, [cmd]) => Some(cmd),
            _ => None,
        }
    }
}

impl Instruction {
    /// Upper-case instruction name (`RUN`, `COPY`, …).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

impl InstructionKind {
    /// Upper-case instruction name.
    pub fn name(&self) -> &'static str {
        match self {
            InstructionKind::Run(_) => "RUN",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Shell(_) => "SHELL",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::User(_) => "USER",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::StopSignal(_) => "STOPSIGNAL",
            InstructionKind::Maintainer(_) => "MAINTAINER",
            InstructionKind::Add(_) => "ADD",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Onbuild(_) => "ONBUILD",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
        }
    }
}
