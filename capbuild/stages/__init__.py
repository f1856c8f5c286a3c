"""The stages of a build; the text stage lives in capbuild.stages.text."""
