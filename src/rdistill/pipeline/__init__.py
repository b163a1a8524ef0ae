"""`rdistill run`: the whole distillation flow from one YAML recipe, in one run folder, resumable.

    from rdistill.pipeline import load_recipe, run_recipe
    loaded = load_recipe("recipes/quickstart.yaml", overrides=["eval.max_tokens=128"])
    result = run_recipe(loaded, "runs/quickstart")
    print(result.report_html)

- recipe.py    the recipe (pydantic models, unknown keys refused with file, line and did-you-mean), the YAML
               loader that keeps line numbers, `key.path=value` overrides, path resolution
- stages.py    one small function per stage type: data, generate, filter, train, eval, report
- manifest.py  the run folder's manifest.json: per stage its input key, status, outputs, seconds and costs
- runner.py    plans the stages from a recipe and runs them, skipping those whose inputs did not change and
               resuming an interrupted one

Modules are imported on first use so that `import rdistill.pipeline` stays cheap.
"""

from __future__ import annotations

from rdistill._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "Recipe": "rdistill.pipeline.recipe",
    "LoadedRecipe": "rdistill.pipeline.recipe",
    "RecipeError": "rdistill.pipeline.recipe",
    "load_recipe": "rdistill.pipeline.recipe",
    "load_quickstart": "rdistill.pipeline.recipe",
    "quickstart_path": "rdistill.pipeline.recipe",
    "run_recipe": "rdistill.pipeline.runner",
    "plan_stages": "rdistill.pipeline.runner",
    "RunResult": "rdistill.pipeline.runner",
    "RunObserver": "rdistill.pipeline.runner",
})
