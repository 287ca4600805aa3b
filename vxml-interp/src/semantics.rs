//! Grammar results as ECMAScript values: literal values built directly, SISR tag scripts
//! evaluated over the parse tree.

use boa_engine::{JsString, JsValue};

use crate::grammar::{SemValue, Semantics};
use crate::scope::{Scopes, ScriptError};

/// The interpretation of a match as a JS value.
pub(crate) fn to_js(semantics: &Semantics, scopes: &mut Scopes) -> Result<JsValue, ScriptError> {
    match semantics {
        Semantics::Value(v) => value(v, scopes),
        Semantics::Script(tree) => {
            scopes.with_context(|ctx| crate::grammar::sisr::evaluate(tree, ctx))
        }
    }
}

fn value(v: &SemValue, scopes: &mut Scopes) -> Result<JsValue, ScriptError> {
    Ok(match v {
        SemValue::Str(s) => JsValue::from(JsString::from(s.as_str())),
        SemValue::Num(n) => JsValue::from(*n),
        SemValue::Bool(b) => JsValue::from(*b),
        SemValue::Object(fields) => {
            let object = scopes.new_object();
            for (name, field) in fields {
                let field = value(field, scopes)?;
                scopes.set_property(&object, name, field)?;
            }
            object
        }
    })
}
