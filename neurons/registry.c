/* registry.c — the list of neuron models: one line each. */
#include "neurons/model_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A model is one line here: its name, its nesim_model (defined in its own
 * file), and the threshold rule the name implies (-1: the population's
 * choice, default fixed). An alias names a model with a rule. */
#define NESIM_MODELS(X)                                                                           \
    X("if", nesim_model_if, -1)                                                                   \
    X("lif", nesim_model_lif, -1)                                                                 \
    X("lif_exp", nesim_model_lif_exp, -1)                                                         \
    X("alif", nesim_model_lif, NESIM_RULE_ADAPTIVE)                                               \
    X("linleak", nesim_model_linleak, -1)                                                         \
    X("loihi", nesim_model_loihi, -1)                                                             \
    X("poisson", nesim_model_poisson, -1)

#define DECLARE(name, model, rule) extern const nesim_model model;
#define ENTRY(name, model, rule) {name, &model, rule},
#define NAME(name, model, rule) name,
NESIM_MODELS(DECLARE)

static const struct {
    const char *name;
    const nesim_model *model;
    int rule;
} models[] = {NESIM_MODELS(ENTRY)};
static const char *const names[] = {NESIM_MODELS(NAME) NULL};

const nesim_model *nesim_model_find(const char *name, const nesim_rule **rule)
{
    if (rule)
        *rule = NULL;
    for (size_t i = 0; name && i < sizeof models / sizeof *models; i++)
        if (strcmp(models[i].name, name) == 0) {
            if (rule && models[i].rule >= 0)
                *rule = nesim_rule_find(nesim_rule_names()[models[i].rule]);
            return models[i].model;
        }
    return NULL;
}

const char *const *nesim_model_names(void) { return names; }
