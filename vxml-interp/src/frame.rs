//! The frames of executable content in progress: what the interpreter keeps between steps
//! (see `exec.rs` for how they are stepped).

use std::rc::Rc;

use boa_engine::JsValue;

use crate::document::Exec;
use crate::scope::Scope;

/// Something to do when the frame below it is reached.
#[derive(Debug, Clone)]
pub(crate) enum Marker {
    /// A catch handler ended: the next collection's prompts play only after `<reprompt>`.
    CatchDone,
    /// Document variables are initialised: enter the dialog (`None`: the first one).
    /// Survives events thrown during initialisation.
    EnterDialog(Option<String>),
    /// Dialog variables are initialised: fill items from a form-level result that led here.
    FillFromResult(JsValue),
}

#[derive(Debug)]
pub(crate) enum Frame {
    Body {
        body: Rc<[Exec]>,
        pc: usize,
        scope: Scope,
        /// Start a fresh anonymous scope before the first element.
        fresh: bool,
    },
    Foreach {
        values: Vec<JsValue>,
        index: usize,
        item: String,
        body: Rc<[Exec]>,
        scope: Scope,
    },
    Marker(Marker),
}

impl Frame {
    pub(crate) fn body(body: &Rc<[Exec]>, scope: Scope, fresh: bool) -> Self {
        Frame::Body {
            body: body.clone(),
            pc: 0,
            scope,
            fresh,
        }
    }
}
