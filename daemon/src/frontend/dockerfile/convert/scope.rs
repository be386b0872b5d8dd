//! The variables a stage's instructions see: the ARGs declared so far (with the build's value
//! or their default) overlaid by the stage's environment, expanded with upstream's shell-word
//! rules.

use std::collections::{BTreeMap, BTreeSet};

use nodekit_dockerfile::lint::converter::undefined_vars;
use nodekit_dockerfile::lint::LintWarning;
use nodekit_dockerfile::Lexer;
use nodekit_llb_builder::{Environment, Ordered};

use crate::solver::SolveError;

/// Declared ARGs by name, in the order of their (last) declaration, with their values (None:
/// no value).
pub type Args = Ordered<Option<String>>;

#[derive(Clone, Debug)]
pub struct Scope {
    pub lexer: Lexer,
    /// Values given with `build-arg:` (and the automatic platform ARGs).
    build_args: BTreeMap<String, String>,
    /// ARGs declared in this scope, with their current values.
    pub declared: Args,
    /// The global ARGs' values (declared before the first FROM): a stage's `ARG NAME` without
    /// a default takes them.
    globals: Args,
    /// The stage's environment, from its image and ENV: as the stage's LLB state keeps it,
    /// so that lookups and sets cost no scan of it.
    env: Environment,
    /// The Dockerfile's name and the line being converted, for errors.
    pub file: String,
    pub line: usize,
}

impl Scope {
    pub fn new(escape: char, build_args: BTreeMap<String, String>, file: &str) -> Scope {
        Scope {
            lexer: Lexer::new(escape),
            build_args,
            declared: Args::default(),
            globals: Args::default(),
            env: Environment::default(),
            file: file.to_string(),
            line: 0,
        }
    }

    /// A scope for a new stage with environment `env` (`KEY=value` entries; a key given again
    /// takes the later value): same build args, nothing declared yet.
    pub fn for_stage(&self, env: Vec<String>) -> Scope {
        let entries = env.into_iter().map(|entry| match entry.split_once('=') {
            Some((key, value)) => (key.to_string(), value.to_string()),
            None => (entry, String::new()),
        });
        self.for_stage_in(entries.collect())
    }

    /// A scope for a new stage with the environment `env` as it is: a stage built FROM an
    /// earlier one takes that one's, which costs no copy of it.
    pub fn for_stage_in(&self, env: Environment) -> Scope {
        Scope {
            declared: Args::default(),
            globals: self.declared.clone(),
            env,
            ..self.clone()
        }
    }

    /// The stage's environment.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// Declares `ARG name[=default]`: the build's value wins over the default.
    pub fn declare(&mut self, name: &str, default: Option<&str>) {
        let global = || self.globals.get(name).cloned().flatten();
        let value = self
            .build_args
            .get(name)
            .cloned()
            .or_else(|| default.map(String::from))
            .or_else(global);
        self.declared.set(name.into(), value);
    }

    /// The variables for expansion: the environment, else the declared ARGs. Looked up in
    /// place: copying them for each instruction made a file's cost grow with its square.
    fn variables(&self) -> Variables<'_> {
        Variables(self)
    }

    /// Expands every word upstream expands in `instruction`, with this scope's variables.
    pub fn expand_instruction(
        &self,
        instruction: &mut nodekit_dockerfile::Instruction,
    ) -> Result<(), SolveError> {
        self.expand_instruction_linted(instruction).map(drop)
    }

    /// As [`Scope::expand_instruction`], also returning the UndefinedVar lint warnings: the
    /// variables used that neither an ARG of the stage nor the environment defines.
    pub fn expand_instruction_linted(
        &self,
        instruction: &mut nodekit_dockerfile::Instruction,
    ) -> Result<Vec<LintWarning>, SolveError> {
        let vars = self.variables();
        let lexer = self.lexer;
        let mut unmatched = BTreeSet::new();
        let mut expand_with = |lexer: Lexer, word: &str| {
            let processed = lexer.process_word_with_matches(word, &vars)?;
            unmatched.extend(processed.unmatched);
            Ok(processed.result)
        };
        instruction
            .expand_words(|word| expand_with(lexer, word))
            .map_err(|e| self.error(e))?;
        instruction
            .expand_contents(|data| expand_with(Lexer::for_heredoc(), data))
            .map_err(|e| self.error(e))?;
        if unmatched.is_empty() {
            return Ok(Vec::new());
        }
        let declared: Vec<&str> = self.declared.keys().collect();
        let env_keys: Vec<&str> = self.env.keys().collect();
        Ok(undefined_vars(
            &unmatched,
            &declared,
            &env_keys,
            instruction.start_line,
            instruction.end_line,
        ))
    }

    /// An expander for values parsed later (RUN mounts).
    pub fn expander(
        &self,
    ) -> impl FnMut(&str) -> Result<String, nodekit_dockerfile::ExpandError> + '_ {
        let vars = self.variables();
        move |word| self.lexer.process_word(word, &vars)
    }

    pub fn expand(&self, word: &str) -> Result<String, SolveError> {
        self.lexer
            .process_word(word, &self.variables())
            .map_err(|e| self.error(e))
    }

    pub fn expand_words(&self, word: &str) -> Result<Vec<String>, SolveError> {
        self.lexer
            .process_words(word, &self.variables())
            .map_err(|e| self.error(e))
    }

    /// Sets `KEY=value` in the environment, replacing an earlier value.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.set(key.into(), value.into());
    }

    /// The value of a build arg given for this build (proxies need no ARG).
    pub fn build_arg(&self, name: &str) -> Option<&str> {
        self.build_args.get(name).map(String::as_str)
    }

    /// The environment a RUN step gets: the stage's, plus declared ARGs it does not set.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        for (key, value) in self.declared.iter() {
            if let (Some(value), None) = (value, self.env.get(key)) {
                env.push((key.to_string(), value.clone()));
            }
        }
        env
    }

    /// An error at the current line, as `Dockerfile:LINE: message`.
    pub fn error(&self, message: impl std::fmt::Display) -> SolveError {
        let error = SolveError::InvalidDefinition(message.to_string());
        SolveError::located(&self.file, self.line, error)
    }
}

/// A scope's variables as the shell lexer looks them up: the environment (its last entry for
/// a name), else the declared ARG's value.
pub struct Variables<'a>(&'a Scope);

impl nodekit_dockerfile::Env for Variables<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        let declared = || self.0.declared.get(name).and_then(|value| value.as_deref());
        self.0.env.get_str(name).or_else(declared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_override_defaults_and_env_overrides_args() {
        let build_args = BTreeMap::from([("A".to_string(), "from-build".to_string())]);
        let mut scope = Scope::new('\\', build_args, "Dockerfile");
        scope.declare("A", Some("default"));
        scope.declare("B", Some("b"));
        scope.declare("C", None);
        assert_eq!(
            scope.expand("$A-$B-${C:-none}").unwrap(),
            "from-build-b-none"
        );
        scope.set_env("B", "env");
        assert_eq!(scope.expand("$B").unwrap(), "env");
        let env = scope.run_env();
        assert!(env.contains(&("B".to_string(), "env".to_string())));
        assert!(env.contains(&("A".to_string(), "from-build".to_string())));
    }

    #[test]
    fn an_image_s_key_given_twice_takes_its_later_value_until_set() {
        let global = Scope::new('\\', BTreeMap::new(), "Dockerfile");
        let mut scope = global.for_stage(vec!["A=1".into(), "B".into(), "A=2".into()]);
        assert_eq!(scope.expand("$A-${B-unset}").unwrap(), "2-");
        scope.set_env("A", "3");
        assert_eq!(scope.expand("$A").unwrap(), "3");
    }
}
