//! Iterative backtracking matcher for compiled shell patterns, with Go
//! regexp leftmost-first preference. Only `*` creates choice points; a
//! failed `(star, position)` state is remembered, which keeps matching
//! polynomial, and the explicit stack keeps deep patterns off the call
//! stack. A work budget turns pathological inputs into an error instead
//! of a hang.

use std::collections::HashSet;

/// Maximum number of token comparisons and backtracking steps per match.
const BUDGET: usize = 2_000_000;

/// Error for inputs exceeding [`BUDGET`].
pub(super) const TOO_COMPLEX: &str = "pattern too complex for this value";

/// A pattern token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    /// Any run of characters other than `\n` (Go `.*` / `.*?`).
    Star,
    /// One character other than `\n` (Go `.`).
    Any,
    /// That character.
    Lit(char),
}

/// A `*` choice point: which candidate end to try next.
struct Choice {
    ti: usize,
    pos: usize,
    run: usize,
    tried: usize,
}

/// Matching state over one subject string.
pub(super) struct Matcher<'a> {
    toks: &'a [Tok],
    text: &'a [char],
    greedy: bool,
    failed: HashSet<(usize, usize)>,
    steps: usize,
}

/// Outcome of matching the tokens up to the next `*`.
enum Step {
    Done(usize),
    Fail,
    Star(usize, usize),
}

impl<'a> Matcher<'a> {
    pub(super) fn new(toks: &'a [Tok], text: &'a [char], greedy: bool) -> Self {
        Matcher {
            toks,
            text,
            greedy,
            failed: HashSet::new(),
            steps: 0,
        }
    }

    /// Matches literal and `?` tokens from `(ti, pos)` up to a `*`.
    fn linear(&mut self, mut ti: usize, mut pos: usize) -> Step {
        while let Some(tok) = self.toks.get(ti) {
            self.steps += 1;
            let ok = match *tok {
                Tok::Star => return Step::Star(ti, pos),
                Tok::Lit(c) => self.text.get(pos) == Some(&c),
                Tok::Any => self.text.get(pos).is_some_and(|c| *c != '\n'),
            };
            if !ok {
                return Step::Fail;
            }
            ti += 1;
            pos += 1;
        }
        Step::Done(pos)
    }

    /// End of the preferred match anchored at `start`.
    pub(super) fn at(&mut self, start: usize) -> Result<Option<usize>, String> {
        let mut stack: Vec<Choice> = Vec::new();
        let mut step = self.linear(0, start);
        loop {
            if self.steps > BUDGET {
                return Err(TOO_COMPLEX.to_string());
            }
            match step {
                Step::Done(end) => return Ok(Some(end)),
                Step::Star(ti, pos) if !self.failed.contains(&(ti, pos)) => {
                    let run = self.text[pos..].iter().take_while(|c| **c != '\n').count();
                    stack.push(Choice {
                        ti,
                        pos,
                        run,
                        tried: 0,
                    });
                }
                Step::Star(..) | Step::Fail => {}
            }
            match self.next_candidate(&mut stack) {
                Some(next) => step = next,
                None => return Ok(None),
            }
        }
    }

    /// Resumes the innermost choice point with untried candidates.
    fn next_candidate(&mut self, stack: &mut Vec<Choice>) -> Option<Step> {
        loop {
            self.steps += 1;
            let top = stack.last_mut()?;
            if top.tried > top.run {
                self.failed.insert((top.ti, top.pos));
                stack.pop();
                continue;
            }
            let len = if self.greedy {
                top.run - top.tried
            } else {
                top.tried
            };
            top.tried += 1;
            let (ti, pos) = (top.ti + 1, top.pos + len);
            return Some(self.linear(ti, pos));
        }
    }

    /// Leftmost match at or after `from`: `(start, end)`.
    pub(super) fn find(&mut self, from: usize) -> Result<Option<(usize, usize)>, String> {
        for start in from..=self.text.len() {
            if let Some(end) = self.at(start)? {
                return Ok(Some((start, end)));
            }
        }
        Ok(None)
    }
}
