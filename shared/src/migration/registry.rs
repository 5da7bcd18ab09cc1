//! The registry: the migrations, in version order, and the plan that takes the stored data
//! to a version.

use std::sync::LazyLock;

use super::{ExpireFinishedJobs, Migration, RewriteIndexKeys};

/// The migrations, in version order.
pub struct Registry {
    migrations: Vec<Box<dyn Migration>>,
}

impl Registry {
    /// Refuses anything but versions 1, 2, 3, ... in order, with no gap: a gap would let a
    /// plan skip a migration, and a job complete at a version no migration brought it to.
    pub fn new(migrations: Vec<Box<dyn Migration>>) -> Result<Self, String> {
        for (expected, migration) in (1..).zip(&migrations) {
            if migration.version() != expected {
                return Err(format!(
                    "migration {:?} has version {}; version {expected} was due",
                    migration.name(),
                    migration.version()
                ));
            }
        }
        Ok(Self { migrations })
    }

    /// The service's own migrations. Add yours here, with the next version number.
    pub fn built_in() -> &'static Self {
        static BUILT_IN: LazyLock<Registry> = LazyLock::new(|| {
            Registry::new(vec![
                Box::new(ExpireFinishedJobs),
                Box::new(RewriteIndexKeys),
            ])
            .expect("the built-in migrations are in version order")
        });
        &BUILT_IN
    }

    /// The newest data version a migration can bring the data to (0 with no migrations).
    pub fn newest(&self) -> u32 {
        self.migrations.last().map_or(0, |m| m.version())
    }

    /// Every migration, in version order.
    pub fn migrations(&self) -> impl Iterator<Item = &dyn Migration> {
        self.migrations.iter().map(Box::as_ref)
    }

    pub fn get(&self, version: u32) -> Option<&dyn Migration> {
        self.migrations
            .iter()
            .find(|m| m.version() == version)
            .map(Box::as_ref)
    }

    /// The versions that take data at `stored` to `target`: every one above `stored` up to
    /// `target`, in order; none when the data is there already.
    pub fn plan(&self, stored: u32, target: u32) -> Vec<u32> {
        self.migrations
            .iter()
            .map(|m| m.version())
            .filter(|version| *version > stored && *version <= target)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::future::BoxFuture;

    use super::*;
    use crate::migration::{MigrationContext, Step};
    use crate::store::StoreError;

    struct Named(u32);

    impl Migration for Named {
        fn version(&self) -> u32 {
            self.0
        }

        fn name(&self) -> &'static str {
            "named"
        }

        fn step<'a>(
            &'a self,
            _: &'a MigrationContext<'a>,
            _: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Step, StoreError>> {
            Box::pin(async { Ok(Step::default()) })
        }
    }

    fn registry(versions: &[u32]) -> Result<Registry, String> {
        Registry::new(
            versions
                .iter()
                .map(|v| Box::new(Named(*v)) as Box<dyn Migration>)
                .collect(),
        )
    }

    #[test]
    fn versions_are_one_up_with_no_gap() {
        assert!(registry(&[1, 2, 3]).is_ok());
        assert!(registry(&[]).is_ok());
        for bad in [&[0][..], &[2], &[1, 1], &[2, 1], &[1, 2, 5]] {
            assert!(registry(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_plan_covers_what_lies_between_the_stored_and_the_asked_version() {
        let registry = registry(&[1, 2, 3]).unwrap();
        assert_eq!(registry.plan(0, 3), vec![1, 2, 3]);
        assert_eq!(registry.plan(1, 2), vec![2]);
        assert_eq!(registry.plan(3, 4), Vec::<u32>::new());
        assert_eq!(registry.plan(3, 2), Vec::<u32>::new());
        assert_eq!(registry.newest(), 3);
    }

    #[test]
    fn the_built_in_migrations_reach_version_2() {
        let registry = Registry::built_in();
        assert_eq!(registry.newest(), 2);
        assert_eq!(registry.get(1).unwrap().name(), "expire-finished-jobs");
        assert_eq!(registry.get(2).unwrap().name(), "rewrite-index-keys");
    }
}
