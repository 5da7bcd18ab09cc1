//! The shared crate stays easy to walk through: its modules depend on each other one way
//! only (at every level, a module's own code and its children form no cycle), no file grows
//! past 400 lines, and no function past 60.
//!
//! Dependencies are read from the source with `syn`: every `use` and every path in code
//! that starts at `crate`, `super`, `self`, a child module or an imported name. A `pub use`
//! that only re-exports a name is not a dependency of its own, but a path through it counts
//! as a dependency on where the name is defined. Test code is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

const MAX_FILE_LINES: usize = 400;
const MAX_FUNCTION_LINES: usize = 60;

type ModulePath = Vec<String>;

fn shared_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src")
}

/// Every module file of the crate, by module path: `lib.rs` is `[]`, `a/mod.rs` and `a.rs`
/// are `[a]`, `a/b.rs` is `[a, b]`.
fn module_files(root: &Path) -> BTreeMap<ModulePath, PathBuf> {
    let mut files = BTreeMap::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut module: ModulePath = relative
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            files.insert(module, path);
        }
    }
    files
}

fn is_test_only(attributes: &[syn::Attribute]) -> bool {
    attributes.iter().any(|attribute| {
        attribute.path().is_ident("cfg")
            && attribute
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

/// One module's source: the names its `use` items bind, and the paths its code names.
#[derive(Default)]
struct Source {
    /// Name bound by a `use` → the path it stands for, written as in the source.
    imports: BTreeMap<String, Vec<String>>,
    /// Paths of non-re-exporting `use` items and of code.
    paths: Vec<Vec<String>>,
}

fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    match tree {
        syn::UseTree::Path(path) => {
            prefix.push(path.ident.to_string());
            use_paths(&path.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(name) => {
            let mut full = prefix.clone();
            let bound = name.ident.to_string();
            if bound != "self" {
                full.push(bound.clone());
            }
            let bound = if bound == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                bound
            };
            out.push((bound, full));
        }
        syn::UseTree::Rename(rename) => {
            let mut full = prefix.clone();
            full.push(rename.ident.to_string());
            out.push((rename.rename.to_string(), full));
        }
        syn::UseTree::Glob(_) => out.push(("*".into(), prefix.clone())),
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                use_paths(tree, prefix, out);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Source {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attributes = match item {
            syn::Item::Mod(item) => &item.attrs,
            syn::Item::Fn(item) => &item.attrs,
            syn::Item::Impl(item) => &item.attrs,
            syn::Item::Use(item) => &item.attrs,
            _ => &Vec::new(),
        };
        if is_test_only(attributes) {
            return;
        }
        if let syn::Item::Use(item) = item {
            let mut bound = Vec::new();
            use_paths(&item.tree, &mut Vec::new(), &mut bound);
            let re_export = !matches!(item.vis, syn::Visibility::Inherited);
            for (name, path) in bound {
                if !re_export {
                    self.paths.push(path.clone());
                }
                self.imports.insert(name, path);
            }
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.paths
            .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
}

struct Crate {
    modules: BTreeMap<ModulePath, Source>,
}

impl Crate {
    fn read(files: &BTreeMap<ModulePath, PathBuf>) -> Self {
        let modules = files
            .iter()
            .map(|(module, path)| {
                let file = syn::parse_file(&std::fs::read_to_string(path).unwrap())
                    .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                let mut source = Source::default();
                source.visit_file(&file);
                (module.clone(), source)
            })
            .collect();
        Self { modules }
    }

    /// `path` as written in `module`, made absolute; `None` when it leaves the crate.
    fn absolute(&self, module: &ModulePath, path: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" => module.clone(),
            "super" => module[..module.len().checked_sub(1)?].to_vec(),
            _ => {
                let mut child = module.clone();
                child.push(first.clone());
                if self.modules.contains_key(&child) {
                    return Some([child, rest.to_vec()].concat());
                }
                let imported = self.modules[module].imports.get(first)?;
                if imported.first() == Some(first) {
                    return None; // `use x::x` of another crate
                }
                let target = self.absolute(module, imported)?;
                return Some([target, rest.to_vec()].concat());
            }
        };
        let mut rest = rest;
        while let Some(("super", after)) = rest.split_first().map(|(h, t)| (h.as_str(), t)) {
            base.pop();
            rest = after;
        }
        Some([base, rest.to_vec()].concat())
    }

    /// The module that defines what an absolute path names, following re-exports.
    fn defining_module(&self, path: &[String], depth: usize) -> Option<ModulePath> {
        let length = (0..=path.len())
            .rev()
            .find(|n| self.modules.contains_key(&path[..*n]))?;
        let module = path[..length].to_vec();
        let Some(name) = path.get(length) else {
            return Some(module);
        };
        match self.modules[&module].imports.get(name) {
            Some(imported) if depth < 8 => {
                let target = self.absolute(&module, imported)?;
                self.defining_module(&[target, path[length + 1..].to_vec()].concat(), depth + 1)
            }
            _ => Some(module),
        }
    }

    /// Module → the modules its code depends on (itself left out).
    fn dependencies(&self) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
        self.modules
            .iter()
            .map(|(module, source)| {
                let targets = source
                    .paths
                    .iter()
                    .filter_map(|path| self.absolute(module, path))
                    .filter_map(|path| self.defining_module(&path, 0))
                    .filter(|target| target != module)
                    .collect();
                (module.clone(), targets)
            })
            .collect()
    }
}

/// A cycle among the nodes of `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = stack.iter().position(|n| n == node) {
            return Some([&stack[start..], &[node.to_owned()]].concat());
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_shared_crate_has_no_import_cycle_at_any_level() {
    let files = module_files(&shared_src());
    let dependencies = Crate::read(&files).dependencies();
    let parents: BTreeSet<ModulePath> = files
        .keys()
        .filter(|module| !module.is_empty())
        .map(|module| module[..module.len() - 1].to_vec())
        .collect();
    let mut checked = 0;
    let mut cycles = Vec::new();
    for parent in &parents {
        // At this level a node is the parent's own code ("self") or one of its children with
        // everything below it.
        let node = |module: &ModulePath| -> Option<String> {
            let below = module.strip_prefix(parent.as_slice())?;
            Some(below.first().cloned().unwrap_or_else(|| "self".to_owned()))
        };
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, targets) in &dependencies {
            let Some(from) = node(from) else { continue };
            for to in targets.iter().filter_map(&node) {
                if to != from {
                    edges.entry(from.clone()).or_default().insert(to);
                }
                checked += 1;
            }
        }
        if let Some(cycle) = find_cycle(&edges) {
            cycles.push(format!(
                "crate::{}: {}",
                parent.join("::"),
                cycle.join(" -> ")
            ));
        }
    }
    assert!(
        cycles.is_empty(),
        "modules depend on each other in a cycle: {cycles:#?}"
    );
    assert!(checked > 100, "only {checked} dependencies were read");
}

#[test]
fn no_shared_file_is_longer_than_it_should_be() {
    for path in module_files(&shared_src()).values() {
        let lines = std::fs::read_to_string(path).unwrap().lines().count();
        assert!(
            lines <= MAX_FILE_LINES,
            "{} has {lines} lines",
            path.display()
        );
    }
}

/// Every function's line count, test code left out.
struct Functions(Vec<(String, usize)>);

impl Functions {
    fn record(&mut self, name: &syn::Ident, block: &syn::Block) {
        let span = block.span();
        self.0
            .push((name.to_string(), span.end().line - span.start().line + 1));
    }
}

impl<'ast> Visit<'ast> for Functions {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_test_only(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        self.record(&item.sig.ident, &item.block);
        syn::visit::visit_item_fn(self, item);
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        self.record(&item.sig.ident, &item.block);
        syn::visit::visit_impl_item_fn(self, item);
    }
}

#[test]
fn no_shared_function_is_longer_than_it_should_be() {
    let mut too_long = Vec::new();
    for path in module_files(&shared_src()).values() {
        let file = syn::parse_file(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut functions = Functions(Vec::new());
        functions.visit_file(&file);
        too_long.extend(
            functions
                .0
                .into_iter()
                .filter(|(_, lines)| *lines > MAX_FUNCTION_LINES)
                .map(|(name, lines)| format!("{}: {name} has {lines} lines", path.display())),
        );
    }
    assert!(too_long.is_empty(), "{too_long:#?}");
}
