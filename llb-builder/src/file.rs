//! File actions (BuildKit's `llb.Mkdir`, `Mkfile`, `Rm`, `Symlink`, `Copy` and their chains).
//! The actions themselves are in `actions` and `copy`.

use std::sync::Arc;

pub use crate::actions::{Chown, Mkdir, Mkfile, Rm, Symlink, UserRef};
use crate::copy::Copy;
use crate::state::State;

/// A chain of file actions run by one file op: each action works on the result of the one
/// before; the first on the state [`State::file`] is called on. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FileAction(pub(crate) Arc<ActionLink>);

#[derive(Debug)]
pub(crate) struct ActionLink {
    pub prev: Option<FileAction>,
    pub action: Action,
}

/// One file action.
#[derive(Debug, Clone)]
pub enum Action {
    Mkdir(Mkdir),
    Mkfile(Mkfile),
    Rm(Rm),
    Symlink(Symlink),
    Copy(Copy),
}

impl FileAction {
    /// A chain of one action.
    pub fn new(action: impl Into<Action>) -> FileAction {
        FileAction::link(None, action.into())
    }

    /// This chain followed by `action`, which works on its result.
    pub fn then(&self, action: impl Into<Action>) -> FileAction {
        FileAction::link(Some(self.clone()), action.into())
    }

    /// This chain run on `state`, as the source of a copy (BuildKit's `WithState`): the copy
    /// reads the chain's result, and the chain's actions join the copying file op.
    pub fn with_state(&self, state: &State) -> CopySource {
        let bound = BoundActions {
            actions: self.clone(),
            state: state.clone(),
        };
        CopySource::Actions(Arc::new(bound))
    }

    fn link(prev: Option<FileAction>, action: Action) -> FileAction {
        FileAction(Arc::new(ActionLink { prev, action }))
    }
}

macro_rules! into_action {
    ($($kind:ident),*) => {$(
        impl From<$kind> for Action {
            fn from(action: $kind) -> Action {
                Action::$kind(action)
            }
        }
        impl From<$kind> for FileAction {
            fn from(action: $kind) -> FileAction {
                FileAction::new(action)
            }
        }
    )*};
}
into_action!(Mkdir, Mkfile, Rm, Symlink, Copy);

/// What a copy reads from: a state, or a chain of actions run on a state.
#[derive(Debug, Clone)]
pub enum CopySource {
    State(State),
    Actions(Arc<BoundActions>),
}

/// A chain of actions bound to the state it runs on (see [`FileAction::with_state`]).
#[derive(Debug)]
pub struct BoundActions {
    pub(crate) actions: FileAction,
    pub(crate) state: State,
}

impl From<&State> for CopySource {
    fn from(state: &State) -> CopySource {
        CopySource::State(state.clone())
    }
}

impl From<State> for CopySource {
    fn from(state: State) -> CopySource {
        CopySource::State(state)
    }
}
