//! Finding a stage by its name: indexed, as a file of N stages each naming the one before
//! looked each up in a scan of all of them (a cost of N squared).

use std::collections::HashMap;

use nodekit_dockerfile::Stage;

pub struct StageNames {
    names: Vec<Option<String>>,
    /// Each name, lower-cased, with its first stage.
    first: HashMap<String, usize>,
}

impl StageNames {
    pub fn new(stages: &[Stage]) -> StageNames {
        let names: Vec<Option<String>> = stages.iter().map(|s| s.name.clone()).collect();
        let mut first = HashMap::new();
        for (index, name) in names.iter().enumerate() {
            if let Some(name) = name {
                first.entry(name.to_ascii_lowercase()).or_insert(index);
            }
        }
        StageNames { names, first }
    }

    /// The stage `name` names (case-insensitively), else the stage of index `name`; only
    /// stages before `before`.
    pub fn find_before(&self, name: &str, before: usize) -> Option<usize> {
        let before_it = |index: &usize| *index < before;
        let by_name = self.first.get(&name.to_ascii_lowercase()).copied();
        let by_index = || name.parse::<usize>().ok().filter(before_it);
        by_name.filter(before_it).or_else(by_index)
    }

    /// As [`StageNames::find_before`], among all the stages.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.find_before(name, self.names.len())
    }

    /// The name of stage `index`, if it has one.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index)?.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dockerfile: &str) -> StageNames {
        let parsed = nodekit_dockerfile::parse(dockerfile).unwrap();
        StageNames::new(&parsed.stages)
    }

    #[test]
    fn a_stage_is_found_by_its_first_name_in_any_case_or_by_its_index() {
        let names = names("FROM a AS One\nFROM b AS two\nFROM c AS one\nFROM d\n");
        assert_eq!(names.find("ONE"), Some(0));
        assert_eq!(names.find("two"), Some(1));
        assert_eq!(names.find("3"), Some(3));
        assert_eq!(names.find("4"), None);
        assert_eq!(names.find("three"), None);
        assert_eq!(names.name(1), Some("two"));
        assert_eq!(names.name(3), None);
    }

    #[test]
    fn only_earlier_stages_are_found_before_a_stage() {
        let names = names("FROM a AS x\nFROM b AS y\nFROM c AS z\n");
        assert_eq!(names.find_before("y", 1), None);
        assert_eq!(names.find_before("y", 2), Some(1));
        assert_eq!(names.find_before("0", 1), Some(0));
        assert_eq!(names.find_before("1", 1), None);
    }
}
