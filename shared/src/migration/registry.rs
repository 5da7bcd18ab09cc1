//! The registry: the migrations, in version order, and the plan that takes the stored data
//! to a version.

use std::sync::LazyLock;

use super::{ExpireFinishedJobs, Migration, RewriteIndexKeys};

/// The migrations, in version order.
pub struct Registry {
    migrations: Vec<Box<dyn Migration>>,
}

impl Registry {
    /// Refuses versions that are not strictly increasing from 1 up.
    pub fn new(migrations: Vec<Box<dyn Migration>>) -> Result<Self, String> {
        let mut previous = 0;
        for migration in &migrations {
            if migration.version() <= previous {
                return Err(format!(
                    "migration {:?} has version {}, which does not follow {previous}",
                    migration.name(),
                    migration.version()
                ));
            }
            previous = migration.version();
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
    fn versions_must_increase() {
        assert!(registry(&[1, 2, 5]).is_ok());
        assert!(registry(&[0]).is_err());
        assert!(registry(&[1, 1]).is_err());
        assert!(registry(&[2, 1]).is_err());
    }

    #[test]
    fn a_plan_covers_what_lies_between_the_stored_and_the_asked_version() {
        let registry = registry(&[1, 2, 5]).unwrap();
        assert_eq!(registry.plan(0, 5), vec![1, 2, 5]);
        assert_eq!(registry.plan(1, 2), vec![2]);
        assert_eq!(registry.plan(2, 4), Vec::<u32>::new());
        assert_eq!(registry.plan(5, 2), Vec::<u32>::new());
        assert_eq!(registry.newest(), 5);
    }

    #[test]
    fn the_built_in_migrations_reach_version_2() {
        let registry = Registry::built_in();
        assert_eq!(registry.newest(), 2);
        assert_eq!(registry.get(1).unwrap().name(), "expire-finished-jobs");
        assert_eq!(registry.get(2).unwrap().name(), "rewrite-index-keys");
    }
}
