/* registry.c — the list of neuron models: one line each. */
#include "neurons/model_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const nesim_model nesim_model_if, nesim_model_lif, nesim_model_lif_exp, nesim_model_poisson;

/* A model is one line here. An alias names a model with a threshold rule. */
static const struct {
    const char *name;
    const nesim_model *model;
    int rule; /* -1: the population's choice (default fixed) */
} models[] = {
    {"if", &nesim_model_if, -1},
    {"lif", &nesim_model_lif, -1},
    {"lif_exp", &nesim_model_lif_exp, -1},
    {"alif", &nesim_model_lif, NESIM_RULE_ADAPTIVE},
    {"poisson", &nesim_model_poisson, -1},
};
static const char *const names[] = {"if", "lif", "lif_exp", "alif", "poisson", NULL};

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
