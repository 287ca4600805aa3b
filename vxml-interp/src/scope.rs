//! ECMAScript scopes on boa: the five VoiceXML scopes as prototype-less objects, chained with
//! `with` (see `shared/notes/ecmascript-scopes.md`, "what works").
//!
//! Every `cond`/`expr` is compiled once as
//! `with($vxs0)with($vxs1)with($vxs2)with($vxs3)with($vxs4){(EXPR)}` and evaluated many times;
//! the `$vxsN` globals point at the current scope objects and are swapped when a document,
//! dialog or anonymous scope begins, so a cached script always sees the current chain.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use boa_engine::job::{GenericJob, Job, JobExecutor, PromiseJob};
use boa_engine::property::PropertyDescriptor;
use boa_engine::{
    Context, JsNativeError, JsObject, JsResult, JsString, JsValue, Script, Source, js_string,
};

/// The VoiceXML variable scopes, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Session = 0,
    Application = 1,
    Document = 2,
    Dialog = 3,
    Anonymous = 4,
}

const SCOPES: [Scope; 5] = [
    Scope::Session,
    Scope::Application,
    Scope::Document,
    Scope::Dialog,
    Scope::Anonymous,
];

/// Names under which each scope refers to itself (`session.x`, `dialog.x`...).
const SELF_NAMES: [Option<&str>; 5] = [
    Some("session"),
    Some("application"),
    Some("document"),
    Some("dialog"),
    None,
];

const PREFIX: &str = "with($vxs0)with($vxs1)with($vxs2)with($vxs3)with($vxs4){";

/// Caps on script work so that a looping document cannot stall its thread.
const LOOP_LIMIT: u64 = 1_000_000;
const RECURSION_LIMIT: usize = 256;
const STACK_LIMIT: usize = 64 * 1024;
const CACHE_LIMIT: usize = 4096;
/// Bracket nesting a script may have; boa's parser recurses per level.
const MAX_NESTING: usize = 100;
/// The longest script source we hand to boa.
const MAX_SOURCE: usize = 1 << 20;
/// Promise jobs run per script evaluation; the rest are dropped (VoiceXML has no event loop).
const MAX_JOBS: usize = 10_000;

/// A job queue that runs a bounded number of promise jobs and drops timers: a self-re-arming
/// Promise chain ends with an error instead of holding the thread forever.
#[derive(Default)]
struct BoundedJobs {
    promise: RefCell<VecDeque<PromiseJob>>,
    generic: RefCell<VecDeque<GenericJob>>,
}

impl JobExecutor for BoundedJobs {
    fn enqueue_job(self: Rc<Self>, job: Job, _context: &mut Context) {
        match job {
            Job::PromiseJob(p) => {
                let mut q = self.promise.borrow_mut();
                if q.len() < MAX_JOBS {
                    q.push_back(p);
                }
            }
            Job::GenericJob(g) => {
                let mut q = self.generic.borrow_mut();
                if q.len() < MAX_JOBS {
                    q.push_back(g);
                }
            }
            // Timers, async and finalization jobs have no meaning in a VoiceXML session.
            _ => {}
        }
    }

    fn run_jobs(self: Rc<Self>, context: &mut Context) -> JsResult<()> {
        let mut budget = MAX_JOBS;
        loop {
            let next = self.promise.borrow_mut().pop_front();
            let result = match next {
                Some(job) => job.call(context),
                None => match self.generic.borrow_mut().pop_front() {
                    Some(job) => job.call(context),
                    None => return Ok(()),
                },
            };
            // A rejected job is the script's business; it must not stop the queue.
            let _ = result;
            budget -= 1;
            if budget == 0 {
                self.promise.borrow_mut().clear();
                self.generic.borrow_mut().clear();
                return Err(JsNativeError::range()
                    .with_message("too many promise jobs")
                    .into());
            }
        }
    }
}

/// Caps on builtins that allocate a big string from a small script.
const GUARDS: &str = r#"(function(){
var L = 1048576;
function wrap(name, tooBig){ var f = String.prototype[name];
  Object.defineProperty(String.prototype, name, {value: function(){
    if (tooBig(String(this), arguments)) throw new RangeError('string longer than ' + L + ' characters');
    return f.apply(this, arguments); }, writable: false, configurable: false, enumerable: false}); }
wrap('repeat', function(s, a){ return s.length * Number(a[0]) > L; });
wrap('padStart', function(s, a){ return Number(a[0]) > L; });
wrap('padEnd', function(s, a){ return Number(a[0]) > L; });
})()"#;

/// The scope objects of an execution context, set aside while a subdialog runs.
#[derive(Debug, Clone)]
pub(crate) struct SavedScopes([JsObject; 5]);

/// Refuses sources that would make boa's recursive parser or evaluator go too deep: bracket
/// nesting beyond [`MAX_NESTING`] (strings and comments skipped) or an absurd length.
pub(crate) fn check_source(source: &str) -> Result<(), ScriptError> {
    if source.len() > MAX_SOURCE {
        return Err(format!("script longer than {MAX_SOURCE} bytes"));
    }
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    // Consecutive prefix operators (`!!!!x`, `- - -x`) recurse too.
    let mut unary_run = 0usize;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != c {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!("brackets nested deeper than {MAX_NESTING} levels"));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if matches!(c, b'!' | b'-' | b'+' | b'~') {
            unary_run += 1;
            if unary_run > MAX_NESTING {
                return Err(format!("more than {MAX_NESTING} operators in a row"));
            }
        } else if !c.is_ascii_whitespace() {
            unary_run = 0;
        }
        i += 1;
    }
    Ok(())
}

/// A script error, reported as `error.semantic`.
pub(crate) type ScriptError = String;

pub(crate) struct Scopes {
    ctx: Context,
    objects: [JsObject; 5],
    cache: HashMap<String, Script>,
}

impl Scopes {
    pub(crate) fn new() -> Self {
        let mut ctx = Context::builder()
            .job_executor(Rc::new(BoundedJobs::default()))
            .build()
            .unwrap_or_default();
        ctx.runtime_limits_mut()
            .set_loop_iteration_limit(LOOP_LIMIT);
        ctx.runtime_limits_mut()
            .set_recursion_limit(RECURSION_LIMIT);
        ctx.runtime_limits_mut().set_stack_size_limit(STACK_LIMIT);
        let objects = std::array::from_fn(|_| JsObject::with_null_proto());
        let mut scopes = Self {
            ctx,
            objects,
            cache: HashMap::new(),
        };
        for scope in SCOPES {
            scopes.install(scope);
        }
        // Builtins that make a huge string in one call get a cap (1 Mi characters).
        let _ = scopes.run(GUARDS);
        scopes
    }

    /// Starts a fresh scope (and empties the scopes inside it).
    pub(crate) fn reset(&mut self, scope: Scope) {
        for inner in SCOPES.iter().filter(|s| **s as usize >= scope as usize) {
            self.objects[*inner as usize] = JsObject::with_null_proto();
            self.install(*inner);
        }
    }

    /// Sets the current scope objects aside (a subdialog starts with fresh ones).
    pub(crate) fn save(&self) -> SavedScopes {
        SavedScopes(self.objects.clone())
    }

    /// Brings back scope objects set aside by [`Scopes::save`].
    pub(crate) fn restore(&mut self, saved: SavedScopes) {
        self.objects = saved.0;
        for scope in SCOPES {
            self.install(scope);
        }
    }

    /// Makes the document scope the application scope: the root document is also the leaf.
    pub(crate) fn alias_document_to_application(&mut self) {
        self.objects[Scope::Document as usize] = self.objects[Scope::Application as usize].clone();
        self.objects[Scope::Dialog as usize] = JsObject::with_null_proto();
        self.objects[Scope::Anonymous as usize] = JsObject::with_null_proto();
        for scope in [Scope::Document, Scope::Dialog, Scope::Anonymous] {
            self.install(scope);
        }
    }

    /// The boa context, for host code (SISR, DOM) that builds values.
    pub(crate) fn context(&mut self) -> &mut Context {
        &mut self.ctx
    }

    fn install(&mut self, scope: Scope) {
        let object = self.objects[scope as usize].clone();
        if let Some(name) = SELF_NAMES[scope as usize] {
            // Read-only, so that a script cannot replace a scope.
            let desc = PropertyDescriptor::builder()
                .value(object.clone())
                .writable(false)
                .enumerable(false)
                .configurable(false);
            let _ = object.define_property_or_throw(JsString::from(name), desc, &mut self.ctx);
        }
        let global = self.ctx.global_object();
        let desc = PropertyDescriptor::builder()
            .value(object)
            .writable(false)
            .enumerable(false)
            .configurable(true);
        let key = JsString::from(format!("$vxs{}", scope as usize));
        let _ = global.define_property_or_throw(key, desc, &mut self.ctx);
    }

    fn compiled(&mut self, source: &str) -> Result<Script, ScriptError> {
        if let Some(script) = self.cache.get(source) {
            return Ok(script.clone());
        }
        check_source(source)?;
        let script = Script::parse(Source::from_bytes(source), None, &mut self.ctx)
            .map_err(|e| e.to_string())?;
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(source.to_owned(), script.clone());
        Ok(script)
    }

    fn run(&mut self, source: &str) -> Result<JsValue, ScriptError> {
        let script = self.compiled(source)?;
        let result = script.evaluate(&mut self.ctx).map_err(|e| e.to_string());
        // Promise jobs are not part of VoiceXML, but run them (bounded) so none linger.
        let jobs = self.ctx.run_jobs().map_err(|e| e.to_string());
        let value = result?;
        jobs?;
        Ok(value)
    }

    /// Evaluates an expression in the scope chain.
    pub(crate) fn eval(&mut self, expr: &str) -> Result<JsValue, ScriptError> {
        self.run(&format!("{PREFIX}({expr}\n)}}"))
    }

    /// Evaluates a condition (`ToBoolean`).
    pub(crate) fn eval_bool(&mut self, cond: &str) -> Result<bool, ScriptError> {
        Ok(self.eval(cond)?.to_boolean())
    }

    /// Evaluates an expression to its string value.
    pub(crate) fn eval_string(&mut self, expr: &str) -> Result<String, ScriptError> {
        let value = self.eval(expr)?;
        self.string_of(&value)
    }

    /// `ToString` of a value.
    pub(crate) fn string_of(&mut self, value: &JsValue) -> Result<String, ScriptError> {
        value
            .to_string(&mut self.ctx)
            .map(|s| s.to_std_string_escaped())
            .map_err(|e| e.to_string())
    }

    /// Declares a variable in `scope` (`<var>`); an existing one is overwritten.
    pub(crate) fn declare(
        &mut self,
        scope: Scope,
        name: &str,
        value: JsValue,
    ) -> Result<(), ScriptError> {
        if !is_identifier(name) {
            return Err(format!("{name:?} is not a valid variable name"));
        }
        self.set(scope, name, value)
    }

    /// Sets a variable in `scope`.
    pub(crate) fn set(
        &mut self,
        scope: Scope,
        name: &str,
        value: JsValue,
    ) -> Result<(), ScriptError> {
        self.objects[scope as usize]
            .create_data_property_or_throw(JsString::from(name), value, &mut self.ctx)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Reads a variable of `scope` (undefined when absent).
    pub(crate) fn get(&mut self, scope: Scope, name: &str) -> JsValue {
        self.objects[scope as usize]
            .get(JsString::from(name), &mut self.ctx)
            .unwrap_or_default()
    }

    /// `<assign>`: sets the variable in the innermost scope that declares it. A name that no
    /// scope declares is an error (`error.semantic`), as is a path whose base is undeclared.
    pub(crate) fn assign(&mut self, name: &str, value: JsValue) -> Result<(), ScriptError> {
        if is_identifier(name) {
            let owner = self
                .owner(name)
                .ok_or_else(|| format!("{name} is not declared"))?;
            return self.set(owner, name, value);
        }
        // A path such as `document.x` or `obj.field`: check the base, then let JS assign.
        let base: String = name
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '$'))
            .collect();
        if base.is_empty() || self.owner(&base).is_none() {
            return Err(format!("{name} is not declared"));
        }
        self.set(Scope::Anonymous, "$vxassign", value)?;
        let result = self.eval(&format!("{name} = $vxs4.$vxassign"));
        let _ = self.objects[Scope::Anonymous as usize]
            .delete_property_or_throw(js_string!("$vxassign"), &mut self.ctx);
        result.map(|_| ())
    }

    /// Whether any scope declares `name` (or, for a path, its base).
    pub(crate) fn is_declared(&mut self, name: &str) -> bool {
        let base: String = name
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '$'))
            .collect();
        !base.is_empty() && self.owner(&base).is_some()
    }

    /// Sets `object[name]`.
    pub(crate) fn set_property(
        &mut self,
        object: &JsValue,
        name: &str,
        value: JsValue,
    ) -> Result<(), ScriptError> {
        let Some(obj) = object.as_object() else {
            return Err("not an object".into());
        };
        obj.create_data_property_or_throw(JsString::from(name), value, &mut self.ctx)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// `object[name]` (undefined when absent or on error).
    pub(crate) fn get_property(&mut self, object: &JsObject, name: &str) -> JsValue {
        object
            .get(JsString::from(name), &mut self.ctx)
            .unwrap_or_default()
    }

    /// Whether `name in object`.
    pub(crate) fn has_property(&mut self, object: &JsObject, name: &str) -> bool {
        object
            .has_property(JsString::from(name), &mut self.ctx)
            .unwrap_or(false)
    }

    /// The elements of an array-like value, snapshot (bounded).
    pub(crate) fn array_values(&mut self, value: &JsValue) -> Result<Vec<JsValue>, ScriptError> {
        const MAX_ELEMENTS: u64 = 100_000;
        let Some(obj) = value.as_object() else {
            return Err("not an array".into());
        };
        let length = obj
            .get(js_string!("length"), &mut self.ctx)
            .map_err(|e| e.to_string())?
            .to_length(&mut self.ctx)
            .map_err(|e| e.to_string())?;
        if length > MAX_ELEMENTS {
            return Err(format!("array longer than {MAX_ELEMENTS} elements"));
        }
        (0..length)
            .map(|i| obj.get(i, &mut self.ctx).map_err(|e| e.to_string()))
            .collect()
    }

    /// Defines a global helper function once per context (interpreter-internal names only).
    pub(crate) fn ensure_helper(&mut self, name: &str, source: &str) -> Result<(), ScriptError> {
        let global = self.ctx.global_object();
        let defined = global
            .has_own_property(JsString::from(name), &mut self.ctx)
            .unwrap_or(false);
        if defined {
            return Ok(());
        }
        let value = self.run(source)?;
        let desc = PropertyDescriptor::builder()
            .value(value)
            .writable(false)
            .enumerable(false)
            .configurable(false);
        global
            .define_property_or_throw(JsString::from(name), desc, &mut self.ctx)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The innermost scope that owns `name`.
    fn owner(&mut self, name: &str) -> Option<Scope> {
        let key = JsString::from(name);
        SCOPES.iter().rev().copied().find(|scope| {
            self.objects[*scope as usize]
                .has_own_property(key.clone(), &mut self.ctx)
                .unwrap_or(false)
        })
    }

    /// Runs a `<script>` body with its top-level `var` and `function` names declared in `scope`.
    pub(crate) fn run_script(&mut self, scope: Scope, body: &str) -> Result<(), ScriptError> {
        let (vars, functions) = top_level_names(body);
        for name in vars.iter().chain(&functions) {
            if self.owner_is(scope, name) {
                continue;
            }
            self.set(scope, name, JsValue::undefined())?;
        }
        // Block-level function declarations bind inside the `with` block; copy them out so
        // that they live in the scope like `var`s do.
        let mut source = format!("{PREFIX}{body}\n;");
        for f in &functions {
            source.push_str(&format!("$vxs{}[\"{f}\"] = {f};", scope as usize));
        }
        source.push('}');
        self.run(&source).map(|_| ())
    }

    fn owner_is(&mut self, scope: Scope, name: &str) -> bool {
        self.objects[scope as usize]
            .has_own_property(JsString::from(name), &mut self.ctx)
            .unwrap_or(false)
    }

    /// Runs trusted interpreter-generated JavaScript at global level (no `with` chain).
    pub(crate) fn run_internal(&mut self, source: &str) -> Result<JsValue, ScriptError> {
        self.run(source)
    }
}

/// A JavaScript string literal for `text`.
pub(crate) fn js_string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// The names a script declares at its top level with `var` and `function`. A light scan, not a
/// parse: it skips strings, comments and nested braces, which covers what VoiceXML scripts do.
fn top_level_names(body: &str) -> (Vec<String>, Vec<String>) {
    let mut vars = Vec::new();
    let mut functions = Vec::new();
    let chars: Vec<char> = body.chars().collect();
    let mut depth = 0i32;
    let mut i = 0;
    let mut expect: Option<&str> = None; // "var" or "function": the next identifier is a name
    let mut in_var_list = false;
    let mut paren = 0i32;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '(' => paren += 1,
            ')' => paren -= 1,
            ';' if depth == 0 => in_var_list = false,
            ',' if depth == 0 && paren == 0 && in_var_list => expect = Some("var"),
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if depth == 0 {
                    match (expect.take(), word.as_str()) {
                        (Some("var"), _) => vars.push(word),
                        (Some(_), _) => functions.push(word),
                        (None, "var") => {
                            expect = Some("var");
                            in_var_list = true;
                        }
                        (None, "function") => expect = Some("function"),
                        _ => {}
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (vars, functions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_innermost_first_and_assign_targets_the_owner() {
        let mut s = Scopes::new();
        s.declare(Scope::Document, "x", JsValue::from(1)).unwrap();
        s.declare(Scope::Dialog, "x", JsValue::from(2)).unwrap();
        assert_eq!(s.eval_string("x").unwrap(), "2");
        assert_eq!(s.eval_string("document.x").unwrap(), "1");
        s.assign("x", JsValue::from(5)).unwrap();
        assert_eq!(s.eval_string("dialog.x + document.x").unwrap(), "6");
        s.reset(Scope::Dialog);
        assert_eq!(s.eval_string("x").unwrap(), "1");
    }

    #[test]
    fn assign_to_undeclared_is_an_error() {
        let mut s = Scopes::new();
        assert!(s.assign("nope", JsValue::from(1)).is_err());
        assert!(s.assign("nope.field", JsValue::from(1)).is_err());
        s.declare(Scope::Document, "o", JsValue::undefined())
            .unwrap();
        let obj = s.eval("({})").unwrap();
        s.assign("o", obj).unwrap();
        s.assign("o.field", JsValue::from(3)).unwrap();
        assert_eq!(s.eval_string("o.field").unwrap(), "3");
        assert_eq!(s.eval_string("document.o.field").unwrap(), "3");
    }

    #[test]
    fn scripts_declare_vars_and_functions_in_their_scope() {
        let mut s = Scopes::new();
        s.run_script(
            Scope::Document,
            "var count = 1, other = 'a'; function inc(n) { count = count + n; return count; }",
        )
        .unwrap();
        s.declare(Scope::Dialog, "y", JsValue::from(10)).unwrap();
        assert_eq!(s.eval_string("inc(y)").unwrap(), "11");
        assert_eq!(s.eval_string("document.count").unwrap(), "11");
        assert_eq!(s.eval_string("typeof document.inc").unwrap(), "function");
        assert_eq!(s.eval_string("other").unwrap(), "a");
    }

    #[test]
    fn scopes_are_read_only_and_errors_are_reported() {
        let mut s = Scopes::new();
        s.declare(Scope::Document, "d", JsValue::from(1)).unwrap();
        let _ = s.eval("document = 5");
        assert_eq!(s.eval_string("document.d").unwrap(), "1");
        assert!(s.eval("undefinedName + 1").is_err());
        assert!(s.eval("1 +").is_err());
        assert!(s.eval("while(true){}").is_err(), "loops are bounded");
    }

    #[test]
    fn name_scan_skips_nested_and_quoted_code() {
        let (vars, functions) = top_level_names(
            "var a = 1, b = f(1, 2); // var c\n function g() { var inner; } var s = 'var d';",
        );
        assert_eq!(vars, vec!["a", "b", "s"]);
        assert_eq!(functions, vec!["g"]);
    }

    #[test]
    fn string_literals_escape() {
        let mut s = Scopes::new();
        let lit = js_string_literal("a\"b\\c\nd\u{2028}");
        assert_eq!(s.eval_string(&lit).unwrap(), "a\"b\\c\nd\u{2028}");
    }
}
