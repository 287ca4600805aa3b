//! ECMAScript scopes on boa: one `Context` per interpreter thread, five VoiceXML scope objects
//! per session (`../shared/notes/ecmascript-scopes.md`, "what works" and "hosting").
//!
//! Every `cond`/`expr` is compiled once per thread as a function of the five scope objects,
//! `(function($vxs0,..,$vxs4){with($vxs0)..with($vxs4){return (EXPR)}})`, and called with the
//! session's objects, so one compiled expression serves every call on the thread. Sessions
//! share no state: the scope objects are theirs alone, the builtins are deep-frozen and the
//! global object is frozen, so a stray `z = 1` or a patched `Array.prototype` goes nowhere.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use boa_engine::job::{GenericJob, Job, JobExecutor, PromiseJob};
use boa_engine::object::builtins::JsFunction;
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

const PARAMS: &str = "$vxs0,$vxs1,$vxs2,$vxs3,$vxs4";
const WITH: &str = "with($vxs0)with($vxs1)with($vxs2)with($vxs3)with($vxs4)";

/// Caps on script work so that a looping document cannot stall its thread.
const LOOP_LIMIT: u64 = 1_000_000;
const RECURSION_LIMIT: usize = 256;
const STACK_LIMIT: usize = 64 * 1024;
/// Compiled functions kept per thread.
const CACHE_LIMIT: usize = 8192;
/// Bracket nesting a script may have; boa's parser recurses per level.
const MAX_NESTING: usize = 100;
/// The longest script source we hand to boa.
const MAX_SOURCE: usize = 1 << 20;
/// VM instructions a context may run. boa counts them over the context's whole life (there is
/// no per-call budget), so a thread's runtime is rebuilt whenever fewer than half remain: any
/// one evaluation then has between [`INSTRUCTION_BUDGET`]/2 and [`INSTRUCTION_BUDGET`]
/// instructions, which bounds loops through nested calls and native callbacks that the
/// per-frame loop limit does not. Tens of milliseconds of script in a release build.
const INSTRUCTION_BUDGET: usize = 20_000_000;
/// Promise jobs run per script evaluation; the rest are dropped (VoiceXML has no event loop).
const MAX_JOBS: usize = 10_000;

/// A script error, reported as `error.semantic`.
pub(crate) type ScriptError = String;

/// Caps on builtins that allocate a lot from a small script (a string or array of millions of
/// elements in one call): they throw a RangeError instead.
const GUARDS: &str = r#"(function(){
var L = 1048576, A = 4194304;
function cap(proto, name, tooBig, what){ var f = proto[name];
  Object.defineProperty(proto, name, {value: function(){
    if (tooBig(this, arguments)) throw new RangeError(what);
    return f.apply(this, arguments); }, writable: false, configurable: false, enumerable: false}); }
var longString = 'string longer than ' + L + ' characters';
var longArray = 'array longer than ' + A + ' elements';
cap(String.prototype, 'repeat', function(s, a){ return String(s).length * Number(a[0]) > L; }, longString);
cap(String.prototype, 'padStart', function(s, a){ return Number(a[0]) > L; }, longString);
cap(String.prototype, 'padEnd', function(s, a){ return Number(a[0]) > L; }, longString);
cap(Array.prototype, 'fill', function(o){ return Number(o.length) > A; }, longArray);
cap(Array.prototype, 'join', function(o){ return Number(o.length) > A; }, longArray);
cap(Array, 'from', function(o, a){ return a[0] != null && Number(a[0].length) > A; }, longArray);
cap(Array.prototype, 'concat', function(o, a){
  var n = Number(o.length) || 0;
  for (var i = 0; i < a.length && n <= A; i++) n += (a[i] != null && typeof a[i] === 'object') ? (Number(a[i].length) || 0) : 1;
  return n > A; }, longArray);
})()"#;

/// Deep-freezes every builtin reachable from the global object, then the global object itself.
const FREEZE: &str = r#"(function(){
var seen = new Set();
function freeze(o){
  if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) return;
  seen.add(o);
  Object.freeze(o);
  var names = Object.getOwnPropertyNames(o);
  for (var i = 0; i < names.length; i++) {
    var d = Object.getOwnPropertyDescriptor(o, names[i]);
    if (!d) continue;
    if ('value' in d) freeze(d.value);
    if (d.get) freeze(d.get);
    if (d.set) freeze(d.set);
  }
  freeze(Object.getPrototypeOf(o));
}
freeze(globalThis);
})()"#;

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

/// A script's top-level `var` names and `function` names.
type DeclaredNames = (Vec<String>, Vec<String>);

/// The per-thread ECMAScript runtime: the context and the compiled functions.
struct Runtime {
    ctx: Context,
    compiled: HashMap<String, Result<JsFunction, ScriptError>>,
    /// Top-level `var` and `function` names of scripts, by source.
    declared: HashMap<String, Rc<DeclaredNames>>,
    /// A runtime limit stopped a script: boa may have left its VM stack behind, so the next
    /// evaluation gets a fresh runtime.
    spoilt: bool,
}

thread_local! {
    static RUNTIME: RefCell<Runtime> = RefCell::new(Runtime::new());
}

impl Runtime {
    fn new() -> Self {
        let mut ctx = Context::builder()
            .job_executor(Rc::new(BoundedJobs::default()))
            .instructions_remaining(INSTRUCTION_BUDGET)
            .build()
            .unwrap_or_default();
        ctx.runtime_limits_mut()
            .set_loop_iteration_limit(LOOP_LIMIT);
        ctx.runtime_limits_mut()
            .set_recursion_limit(RECURSION_LIMIT);
        ctx.runtime_limits_mut().set_stack_size_limit(STACK_LIMIT);
        let mut rt = Self {
            ctx,
            compiled: HashMap::new(),
            declared: HashMap::new(),
            spoilt: false,
        };
        if let Err(e) = rt.run_global(GUARDS).and_then(|_| rt.run_global(FREEZE)) {
            tracing::error!(error = %e, "cannot seal the ECMAScript builtins");
        }
        rt
    }

    fn run_global(&mut self, source: &str) -> Result<JsValue, ScriptError> {
        let script = Script::parse(Source::from_bytes(source), None, &mut self.ctx)
            .map_err(|e| e.to_string())?;
        script.evaluate(&mut self.ctx).map_err(|e| e.to_string())
    }

    /// The function compiled from `source` (a function expression), cached.
    fn function(&mut self, source: &str) -> Result<JsFunction, ScriptError> {
        if let Some(f) = self.compiled.get(source) {
            return f.clone();
        }
        // Failures are kept too: a document looping on a broken expression must not make boa
        // parse it again at every step.
        let f = check_source(source).and_then(|()| {
            self.run_global(source)?
                .as_object()
                .and_then(JsFunction::from_object)
                .ok_or_else(|| "internal: not a function".to_owned())
        });
        if self.compiled.len() >= CACHE_LIMIT {
            self.compiled.clear();
        }
        self.compiled.insert(source.to_owned(), f.clone());
        f
    }

    /// Calls the compiled `source` with the session's scope objects.
    fn call(&mut self, source: &str, objects: &[JsObject; 5]) -> Result<JsValue, ScriptError> {
        let f = self.function(source)?;
        let args: Vec<JsValue> = objects.iter().cloned().map(JsValue::from).collect();
        self.invoke(&f, &args)
    }

    /// Calls `f`, then runs the promise jobs it queued (bounded).
    fn invoke(&mut self, f: &JsFunction, args: &[JsValue]) -> Result<JsValue, ScriptError> {
        let result = f
            .call(&JsValue::undefined(), args, &mut self.ctx)
            .map_err(|e| {
                let message = e.to_string();
                if message.contains("RuntimeLimitError") || message.contains("NoInstructionsRemain")
                {
                    self.spoilt = true;
                }
                explain(message)
            });
        // Promise jobs are not part of VoiceXML, but run them (bounded) so none linger.
        let jobs = self.ctx.run_jobs().map_err(|e| e.to_string());
        let value = result?;
        jobs?;
        Ok(value)
    }

    fn declared_names(&mut self, body: &str) -> Result<Rc<DeclaredNames>, ScriptError> {
        if let Some(names) = self.declared.get(body) {
            return Ok(names.clone());
        }
        check_source(body)?;
        let names = Rc::new(top_level_names(body, &mut self.ctx)?);
        if self.declared.len() >= CACHE_LIMIT {
            self.declared.clear();
        }
        self.declared.insert(body.to_owned(), names.clone());
        Ok(names)
    }
}

/// Runs `f` with this thread's runtime.
fn with_runtime<T>(f: impl FnOnce(&mut Runtime) -> T) -> T {
    RUNTIME.with(|rt| {
        let mut rt = rt.borrow_mut();
        if rt.spoilt || rt.ctx.instructions_remaining() < INSTRUCTION_BUDGET / 2 {
            // A fresh context (and realm) with a full budget. Sessions keep their scope
            // objects and values; compiled functions are compiled again as they are needed.
            tracing::debug!("ECMAScript runtime renewed (instruction budget or a runtime limit)");
            *rt = Runtime::new();
        }
        f(&mut rt)
    })
}

/// A context with the interpreter's instruction budget, for unit tests of host code.
#[cfg(test)]
pub(crate) fn test_context() -> Context {
    Context::builder()
        .instructions_remaining(INSTRUCTION_BUDGET)
        .build()
        .unwrap_or_default()
}

/// boa's message for a spent budget, in an author's words.
fn explain(message: String) -> String {
    if message.contains("NoInstructionsRemain") {
        format!("the script ran too long (more than {INSTRUCTION_BUDGET} steps)")
    } else {
        message
    }
}

/// The top-level `var` and `function` names of a script, from boa's own parser.
fn top_level_names(
    body: &str,
    ctx: &mut Context,
) -> Result<(Vec<String>, Vec<String>), ScriptError> {
    use boa_engine::ast::operations::{VarScopedDeclaration, var_scoped_declarations};
    let mut parser = boa_engine::parser::Parser::new(Source::from_bytes(body));
    let scope = boa_engine::ast::scope::Scope::new_global();
    let script = parser
        .parse_script(&scope, ctx.interner_mut())
        .map_err(|e| e.to_string())?;
    let mut vars = Vec::new();
    let mut functions = Vec::new();
    for decl in var_scoped_declarations(&script) {
        let function = !matches!(decl, VarScopedDeclaration::VariableDeclaration(_));
        for sym in decl.bound_names() {
            let Some(name) = ctx.interner().resolve(sym).map(|n| n.to_string()) else {
                continue;
            };
            let list = if function { &mut functions } else { &mut vars };
            if !list.contains(&name) {
                list.push(name);
            }
        }
    }
    Ok((vars, functions))
}

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

/// One session's five scope objects; evaluation happens in the thread's runtime.
pub(crate) struct Scopes {
    objects: [JsObject; 5],
}

impl Scopes {
    pub(crate) fn new() -> Self {
        let mut scopes = Self {
            objects: std::array::from_fn(|_| JsObject::with_null_proto()),
        };
        for scope in SCOPES {
            scopes.install(scope);
        }
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
    }

    /// Makes the document scope the application scope: the root document is also the leaf.
    pub(crate) fn alias_document_to_application(&mut self) {
        self.objects[Scope::Document as usize] = self.objects[Scope::Application as usize].clone();
        for scope in [Scope::Dialog, Scope::Anonymous] {
            self.objects[scope as usize] = JsObject::with_null_proto();
            self.install(scope);
        }
    }

    /// Runs `f` with the thread's boa context, for host code (SISR, DOM) that builds values.
    /// `f` must not evaluate through `Scopes` (the runtime is borrowed).
    pub(crate) fn with_context<T>(&mut self, f: impl FnOnce(&mut Context) -> T) -> T {
        with_runtime(|rt| f(&mut rt.ctx))
    }

    /// Gives a new scope object its self-name (`dialog.dialog === dialog`), read-only so that
    /// a script cannot replace a scope.
    fn install(&mut self, scope: Scope) {
        let Some(name) = SELF_NAMES[scope as usize] else {
            return;
        };
        let object = self.objects[scope as usize].clone();
        let desc = PropertyDescriptor::builder()
            .value(object.clone())
            .writable(false)
            .enumerable(false)
            .configurable(false);
        with_runtime(|rt| {
            let _ = object.define_property_or_throw(JsString::from(name), desc, &mut rt.ctx);
        });
    }

    /// Evaluates an expression in the scope chain.
    pub(crate) fn eval(&mut self, expr: &str) -> Result<JsValue, ScriptError> {
        let source = format!("(function({PARAMS}){{{WITH}{{return ({expr}\n);}}}})");
        with_runtime(|rt| rt.call(&source, &self.objects))
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
        with_runtime(|rt| {
            value
                .to_string(&mut rt.ctx)
                .map(|s| s.to_std_string_escaped())
                .map_err(|e| e.to_string())
        })
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
        let object = &self.objects[scope as usize];
        with_runtime(|rt| {
            object
                .create_data_property_or_throw(JsString::from(name), value, &mut rt.ctx)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    /// Reads a variable of `scope` (undefined when absent).
    pub(crate) fn get(&mut self, scope: Scope, name: &str) -> JsValue {
        let object = &self.objects[scope as usize];
        with_runtime(|rt| {
            object
                .get(JsString::from(name), &mut rt.ctx)
                .unwrap_or_default()
        })
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
        if !self.is_declared(name) {
            return Err(format!("{name} is not declared"));
        }
        self.set(Scope::Anonymous, "$vxassign", value)?;
        let result = self.eval(&format!("{name} = $vxs4.$vxassign"));
        let anonymous = &self.objects[Scope::Anonymous as usize];
        with_runtime(|rt| {
            let _ = anonymous.delete_property_or_throw(js_string!("$vxassign"), &mut rt.ctx);
        });
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
        with_runtime(|rt| {
            obj.create_data_property_or_throw(JsString::from(name), value, &mut rt.ctx)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    /// `object[name]` (undefined when absent or on error).
    pub(crate) fn get_property(&mut self, object: &JsObject, name: &str) -> JsValue {
        with_runtime(|rt| {
            object
                .get(JsString::from(name), &mut rt.ctx)
                .unwrap_or_default()
        })
    }

    /// Whether `name in object`.
    pub(crate) fn has_property(&mut self, object: &JsObject, name: &str) -> bool {
        with_runtime(|rt| {
            object
                .has_property(JsString::from(name), &mut rt.ctx)
                .unwrap_or(false)
        })
    }

    /// A new empty object.
    pub(crate) fn new_object(&mut self) -> JsValue {
        with_runtime(|rt| JsValue::from(JsObject::with_object_proto(rt.ctx.intrinsics())))
    }

    /// A new array of `values`.
    pub(crate) fn new_array(&mut self, values: Vec<JsValue>) -> Result<JsValue, ScriptError> {
        with_runtime(|rt| {
            Ok(JsValue::from(
                boa_engine::object::builtins::JsArray::from_iter(values, &mut rt.ctx),
            ))
        })
    }

    /// The elements of an array-like value, snapshot (bounded).
    pub(crate) fn array_values(&mut self, value: &JsValue) -> Result<Vec<JsValue>, ScriptError> {
        const MAX_ELEMENTS: u64 = 100_000;
        let Some(obj) = value.as_object() else {
            return Err("not an array".into());
        };
        with_runtime(|rt| {
            let length = obj
                .get(js_string!("length"), &mut rt.ctx)
                .map_err(|e| e.to_string())?
                .to_length(&mut rt.ctx)
                .map_err(|e| e.to_string())?;
            if length > MAX_ELEMENTS {
                return Err(format!("array longer than {MAX_ELEMENTS} elements"));
            }
            (0..length)
                .map(|i| obj.get(i, &mut rt.ctx).map_err(|e| e.to_string()))
                .collect()
        })
    }

    /// The innermost scope that owns `name`.
    fn owner(&mut self, name: &str) -> Option<Scope> {
        let key = JsString::from(name);
        let objects = &self.objects;
        with_runtime(|rt| {
            SCOPES.iter().rev().copied().find(|scope| {
                objects[*scope as usize]
                    .has_own_property(key.clone(), &mut rt.ctx)
                    .unwrap_or(false)
            })
        })
    }

    /// Runs a `<script>` body with its top-level `var` and `function` names declared in `scope`.
    pub(crate) fn run_script(&mut self, scope: Scope, body: &str) -> Result<(), ScriptError> {
        let names = with_runtime(|rt| rt.declared_names(body))?;
        let (vars, functions) = (&names.0, &names.1);
        for name in vars.iter().chain(functions) {
            if self.owner_is(scope, name) {
                continue;
            }
            self.set(scope, name, JsValue::undefined())?;
        }
        // Block-level function declarations bind inside the `with` block; copy them out so
        // that they live in the scope like `var`s do.
        let mut source = format!("(function({PARAMS}){{{WITH}{{{body}\n;");
        for f in functions {
            source.push_str(&format!(
                "$vxs{}[{}] = {f};",
                scope as usize,
                js_string_literal(f)
            ));
        }
        source.push_str("}})");
        with_runtime(|rt| rt.call(&source, &self.objects)).map(|_| ())
    }

    fn owner_is(&mut self, scope: Scope, name: &str) -> bool {
        let object = &self.objects[scope as usize];
        with_runtime(|rt| {
            object
                .has_own_property(JsString::from(name), &mut rt.ctx)
                .unwrap_or(false)
        })
    }

    /// Calls the function that trusted `source` evaluates to (compiled once per thread) with
    /// `args`: host helpers such as the `<data>` DOM builder.
    pub(crate) fn call_helper(
        &mut self,
        source: &str,
        args: &[JsValue],
    ) -> Result<JsValue, ScriptError> {
        with_runtime(|rt| {
            let f = rt.function(source)?;
            rt.invoke(&f, args)
        })
    }

    /// Runs trusted interpreter-generated JavaScript with the scope objects as `$vxs0`..`$vxs4`
    /// (no `with` chain). Keep the source constant: values travel through scope variables, so
    /// one compiled function serves every session.
    pub(crate) fn run_internal(&mut self, source: &str) -> Result<JsValue, ScriptError> {
        let source = format!("(function({PARAMS}){{{source}\n}})");
        with_runtime(|rt| rt.call(&source, &self.objects))
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
    fn declared_names_come_from_boas_parser() {
        let mut ctx = Context::default();
        let (vars, functions) = top_level_names(
            "var a = 1, b = f(1, 2); // var c\n function g() { var inner; } var s = 'var d'; if (a) { var e; }",
            &mut ctx,
        )
        .unwrap();
        assert_eq!(vars, vec!["a", "b", "s", "e"]);
        assert_eq!(functions, vec!["g"]);
        assert!(top_level_names("var (", &mut ctx).is_err());
    }

    #[test]
    fn sessions_on_one_thread_share_nothing() {
        let mut a = Scopes::new();
        let mut b = Scopes::new();
        a.declare(Scope::Document, "secret", JsValue::from(42))
            .unwrap();
        // Attempts to leak through globals and builtins go nowhere (sloppy mode: silently).
        let _ = a.run_script(
            Scope::Document,
            "z = 1; globalThis.y = 2; Array.prototype.evil = 3; Object.prototype.x = 4; \
             Math.random = function(){ return 0; }; String.prototype.trim = null;",
        );
        assert_eq!(b.eval_string("typeof secret").unwrap(), "undefined");
        assert_eq!(b.eval_string("typeof z").unwrap(), "undefined");
        assert_eq!(b.eval_string("typeof y").unwrap(), "undefined");
        assert_eq!(b.eval_string("typeof [].evil").unwrap(), "undefined");
        assert_eq!(b.eval_string("typeof ({}).x").unwrap(), "undefined");
        assert_eq!(b.eval_string("typeof Math.random()").unwrap(), "number");
        assert_eq!(b.eval_string("' x '.trim()").unwrap(), "x");
        // The same compiled expression sees each session's own variables.
        b.declare(Scope::Document, "secret", JsValue::from(7))
            .unwrap();
        assert_eq!(a.eval_string("secret").unwrap(), "42");
        assert_eq!(b.eval_string("secret").unwrap(), "7");
    }

    #[test]
    fn runaway_scripts_hit_the_instruction_budget_and_others_carry_on() {
        let mut a = Scopes::new();
        let mut b = Scopes::new();
        b.run_script(
            Scope::Document,
            "var kept = [1, 2]; function twice(n) { return 2 * n; }",
        )
        .unwrap();
        // Loops in nested calls and in native callbacks: the per-frame loop limit does not
        // stop these, the instruction budget does.
        for script in [
            "function f(){ var i = 0; while (i < 999999) i++; } for (var j = 0; j < 999999; j++) f();",
            "[1, 2, 3].forEach(function(){ for (var k = 0; k < 1e9; k++) {} });",
            "try { while (true) {} } catch (e) { while (true) {} }",
        ] {
            let err = a.run_script(Scope::Document, script).unwrap_err();
            assert!(
                err.contains("ran too long") || err.contains("iteration"),
                "{script}: {err}"
            );
        }
        for script in [
            "new Array(4294967295).fill(0);",
            "Array(100000000).join('x');",
            "Array.from({length: 1e9});",
            "[].concat.apply([], Array(100000).fill(Array(100000).fill(1))).length;",
            "'x'.repeat(1e9);",
        ] {
            let err = a.run_script(Scope::Document, script).unwrap_err();
            assert!(
                err.contains("RangeError") || err.contains("RuntimeLimit"),
                "{script}: {err}"
            );
        }
        assert_eq!(a.eval_string("[1, 2].join('-')").unwrap(), "1-2");
        assert_eq!(
            a.eval_string("new Array(3).fill(7).join('')").unwrap(),
            "777"
        );
        // The runtime was renewed; B's values and functions from before still work.
        assert_eq!(b.eval_string("twice(kept[1])").unwrap(), "4");
        assert_eq!(b.eval_string("kept.length").unwrap(), "2");
        assert_eq!(a.eval_string("1 + 1").unwrap(), "2");
    }

    #[test]
    fn string_literals_escape() {
        let mut s = Scopes::new();
        let lit = js_string_literal("a\"b\\c\nd\u{2028}");
        assert_eq!(s.eval_string(&lit).unwrap(), "a\"b\\c\nd\u{2028}");
    }
}
