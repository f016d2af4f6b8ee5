"""The behavioural principles a retro maps its signals to: one-line definitions and typical interventions.

Intervention texts are templates with `{persona}` and `{metric}` placeholders, filled by `fill_template`. They
carry no digits on purpose: a recommendation is checked by the grounding validator (tools.retro.grounding), and
the only numbers a retro may state are numbers of the signals it cites.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principle:
    key: str
    name: str
    definition: str
    interventions: tuple[str, ...]  # templates: {persona}, {metric}


PRINCIPLES: tuple[Principle, ...] = (
    Principle(
        "friction_ability", "Friction and ability (Fogg B=MAP)",
        "Behaviour happens when motivation, ability and a prompt meet; every extra step or error lowers ability.",
        ("Remove or automate the step where {persona} users stall before {metric} recovers",
         "Fix the errors {persona} users hit on the path that {metric} measures, starting with the most frequent",
         "Pre-fill what the product already knows so {persona} users type less"),
    ),
    Principle(
        "prompts_triggers", "Prompts and triggers",
        "A behaviour needs a timely cue; without a prompt at the moment of ability, motivated users still do nothing.",
        ("Send {persona} users an in-product prompt at the moment the next step of {metric} becomes possible",
         "Replace generic reminders for {persona} users with ones triggered by each user's own last action"),
    ),
    Principle(
        "defaults", "Defaults",
        "Most people keep the preset option, so the default decides the outcome for the majority.",
        ("Make the option that helps {metric} the default for {persona} users",
         "Ship sensible presets so {persona} users start from a working configuration"),
    ),
    Principle(
        "endowed_progress", "Endowed progress",
        "People who feel they have already started are more likely to finish.",
        ("Show {persona} users the steps already done for them (account created, data connected) before asking more",
         "Start the progress bar of the flow behind {metric} partly filled with the steps completed automatically"),
    ),
    Principle(
        "goal_gradient", "Goal gradient",
        "Effort rises as the goal gets closer, so visible, near milestones keep people moving.",
        ("Break the flow behind {metric} into short milestones that {persona} users can see themselves approach",
         "Tell {persona} users how little is left at each step"),
    ),
    Principle(
        "peak_end_rule", "Peak-end rule",
        "An experience is judged by its most intense moment and its end, not by its average.",
        ("Find the worst moment {persona} users meet on the path behind {metric} and fix it first",
         "Make the last step of the flow a clear success moment with a useful result for {persona} users"),
    ),
    Principle(
        "loss_aversion", "Loss aversion",
        "Losses weigh about twice as much as equal gains, so what users would lose moves them more than gains.",
        ("Show {persona} users what they would lose (history, reports, results) before they lapse",
         "Frame the renewal offer for {persona} users around results already earned"),
    ),
    Principle(
        "social_proof", "Social proof",
        "People follow what similar others do, especially when unsure.",
        ("Show {persona} users results from peers like them",
         "Show {persona} users how many similar teams already use the step behind {metric}"),
    ),
    Principle(
        "commitment_consistency", "Commitment and consistency",
        "People act in line with what they have already committed to, most of all when the commitment was public.",
        ("Ask {persona} users for a small, explicit commitment (a renewal date, a goal) early on",
         "Remind {persona} users of the goal they set when {metric} starts to slip"),
    ),
    Principle(
        "choice_overload", "Choice overload",
        "Too many options delay or prevent a decision.",
        ("Cut the options {persona} users must choose from on the path behind {metric}",
         "Recommend one option for {persona} users and keep the rest behind a link"),
    ),
    Principle(
        "anchoring", "Anchoring",
        "The first number seen becomes the reference for judging the next ones.",
        ("Show {persona} users the value delivered before the price",
         "Order plans for {persona} users so the recommended one is compared with a higher anchor"),
    ),
    Principle(
        "reciprocity", "Reciprocity",
        "People return favours; helping first earns goodwill and response.",
        ("Give {persona} users something useful (a benchmark, a fix) before asking them for feedback or an upgrade",
         "Close the loop with {persona} users who answered the survey by telling them what changed"),
    ),
    Principle(
        "habit_loop", "Habit loop",
        "Cue, routine and reward repeated in a stable context turn an action into a habit.",
        ("Give {persona} users a recurring cue tied to their own schedule for the action behind {metric}",
         "Reward the repeated action behind {metric} with a visible result for {persona} users"),
    ),
)  # fmt: skip

PRINCIPLES_BY_KEY: dict[str, Principle] = {principle.key: principle for principle in PRINCIPLES}


def fill_template(template: str, *, persona: str | None, metric: str | None) -> str:
    """A template with its placeholders filled: no persona → "all", no metric → "the metric"."""
    return template.format(persona=persona or "all", metric=metric or "the metric")
