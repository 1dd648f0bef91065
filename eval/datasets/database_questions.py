# ruff: noqa: E501 - a table of SQL texts: a long line is one line of the answer as written
"""The database workload's questions and the SQL that answers each (written for this
benchmark, Spider-style: a question in English over a known schema, one deterministic
answer). Several answers take more than one statement (a view or a temporary table first,
the queries after), as an analyst's session does; those are where statements run while the
rest is decoded. (table, question, SQL), in a fixed order; the id is the position."""

from __future__ import annotations

QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("iris", "How many flowers of each species are there, and what is their mean petal length?",
     "SELECT species, COUNT(*) AS flowers, ROUND(AVG(petal_length), 3) AS mean_petal_length\n"
     "FROM iris GROUP BY species ORDER BY mean_petal_length DESC;"),
    ("iris", "Which ten flowers have the largest petal area (length times width)?",
     "SELECT id, species, petal_length, petal_width, ROUND(petal_length * petal_width, 2) AS petal_area\n"
     "FROM iris ORDER BY petal_area DESC, id LIMIT 10;"),
    ("iris", "For each species, give the minimum, maximum and range of the sepal length.",
     "SELECT species, MIN(sepal_length) AS shortest, MAX(sepal_length) AS longest,\n"
     "       ROUND(MAX(sepal_length) - MIN(sepal_length), 2) AS spread\nFROM iris GROUP BY species;"),
    ("iris", "How many versicolor flowers are longer in the sepal than the mean virginica sepal?",
     "SELECT COUNT(*) AS flowers FROM iris\nWHERE species = 'versicolor'\n"
     "  AND sepal_length > (SELECT AVG(sepal_length) FROM iris WHERE species = 'virginica');"),
    ("iris", "Classify each flower by petal length with a simple rule and count how often the rule is right per species.",
     "CREATE TEMP VIEW rule AS\nSELECT id, species,\n"
     "       CASE WHEN petal_length < 2.5 THEN 'setosa' WHEN petal_length < 4.9 THEN 'versicolor' ELSE 'virginica' END AS predicted\n"
     "FROM iris;\nSELECT species, SUM(predicted = species) AS right, COUNT(*) AS flowers FROM rule GROUP BY species;\n"
     "SELECT predicted, species, COUNT(*) AS flowers FROM rule WHERE predicted <> species GROUP BY predicted, species;"),
    ("iris", "Rank the flowers within each species by sepal width and show the three widest of each.",
     "SELECT species, id, sepal_width, rank FROM (\n"
     "  SELECT species, id, sepal_width, RANK() OVER (PARTITION BY species ORDER BY sepal_width DESC) AS rank\n"
     "  FROM iris)\nWHERE rank <= 3 ORDER BY species, rank, id;"),
    ("iris", "Bin the petal width into 0.5 cm bins and count the flowers of each species per bin.",
     "SELECT CAST(petal_width / 0.5 AS INTEGER) * 0.5 AS bin_start, species, COUNT(*) AS flowers\n"
     "FROM iris GROUP BY bin_start, species ORDER BY bin_start, species;"),
    ("iris", "Which measurements differ the most between setosa and virginica on average?",
     "CREATE TEMP TABLE means AS\nSELECT species, AVG(sepal_length) AS sl, AVG(sepal_width) AS sw,\n"
     "       AVG(petal_length) AS pl, AVG(petal_width) AS pw\nFROM iris GROUP BY species;\n"
     "SELECT ROUND(v.sl - s.sl, 3) AS sepal_length, ROUND(v.sw - s.sw, 3) AS sepal_width,\n"
     "       ROUND(v.pl - s.pl, 3) AS petal_length, ROUND(v.pw - s.pw, 3) AS petal_width\n"
     "FROM means AS v, means AS s WHERE v.species = 'virginica' AND s.species = 'setosa';"),
    ("iris", "Find pairs of distinct flowers with identical measurements.",
     "SELECT a.id AS first, b.id AS second, a.species, b.species AS other_species\nFROM iris AS a JOIN iris AS b\n"
     "  ON a.id < b.id AND a.sepal_length = b.sepal_length AND a.sepal_width = b.sepal_width\n"
     " AND a.petal_length = b.petal_length AND a.petal_width = b.petal_width\nORDER BY a.id;"),
    ("wine", "What are the mean alcohol and proline of each cultivar?",
     "SELECT cultivar, COUNT(*) AS wines, ROUND(AVG(alcohol), 2) AS alcohol, ROUND(AVG(proline), 1) AS proline\n"
     "FROM wine GROUP BY cultivar ORDER BY cultivar;"),
    ("wine", "List the five wines with the highest colour intensity and their cultivar and hue.",
     "SELECT id, cultivar, color_intensity, hue FROM wine ORDER BY color_intensity DESC LIMIT 5;"),
    ("wine", "How many wines per cultivar have more flavanoids than the overall median?",
     "CREATE TEMP VIEW ordered AS SELECT flavanoids, ROW_NUMBER() OVER (ORDER BY flavanoids) AS n FROM wine;\n"
     "CREATE TEMP TABLE median AS\nSELECT AVG(flavanoids) AS value FROM ordered\n"
     "WHERE n IN ((SELECT COUNT(*) FROM wine) / 2, (SELECT COUNT(*) FROM wine) / 2 + 1);\n"
     "SELECT value AS median_flavanoids FROM median;\n"
     "SELECT cultivar, SUM(flavanoids > (SELECT value FROM median)) AS above, COUNT(*) AS wines\n"
     "FROM wine GROUP BY cultivar;"),
    ("wine", "Which cultivar has the largest spread of magnesium, measured as max minus min?",
     "SELECT cultivar, MIN(magnesium) AS low, MAX(magnesium) AS high, MAX(magnesium) - MIN(magnesium) AS spread\n"
     "FROM wine GROUP BY cultivar ORDER BY spread DESC LIMIT 1;"),
    ("wine", "Group the wines into alcohol bands of one percent and show the cultivar mix of each band.",
     "SELECT CAST(alcohol AS INTEGER) AS band, SUM(cultivar = 0) AS cultivar_0, SUM(cultivar = 1) AS cultivar_1,\n"
     "       SUM(cultivar = 2) AS cultivar_2, COUNT(*) AS wines\nFROM wine GROUP BY band ORDER BY band;"),
    ("wine", "Standardise the total phenols of each wine and list the wines more than two standard deviations from the mean.",
     "CREATE TEMP TABLE stats AS\nSELECT AVG(total_phenols) AS mean,\n"
     "       SQRT(AVG(total_phenols * total_phenols) - AVG(total_phenols) * AVG(total_phenols)) AS sd FROM wine;\n"
     "SELECT ROUND(mean, 4) AS mean, ROUND(sd, 4) AS sd FROM stats;\n"
     "SELECT id, cultivar, total_phenols, ROUND((total_phenols - mean) / sd, 2) AS z\n"
     "FROM wine, stats WHERE ABS(total_phenols - mean) > 2 * sd ORDER BY z;"),
    ("wine", "For each cultivar, which wine has the highest proline?",
     "SELECT cultivar, id, proline FROM (\n"
     "  SELECT cultivar, id, proline, ROW_NUMBER() OVER (PARTITION BY cultivar ORDER BY proline DESC, id) AS r\n"
     "  FROM wine)\nWHERE r = 1 ORDER BY cultivar;"),
    ("wine", "What share of each cultivar's wines has a hue above 1?",
     "SELECT cultivar, ROUND(AVG(hue > 1) * 100, 1) AS percent_hue_above_1, COUNT(*) AS wines\n"
     "FROM wine GROUP BY cultivar;"),
    ("wine", "Compare the mean ash and alcalinity of ash of wines above and below 13% alcohol.",
     "SELECT CASE WHEN alcohol >= 13 THEN 'strong' ELSE 'light' END AS strength, COUNT(*) AS wines,\n"
     "       ROUND(AVG(ash), 3) AS ash, ROUND(AVG(alcalinity_of_ash), 2) AS alcalinity\n"
     "FROM wine GROUP BY strength;"),
    ("wine", "Build a per-cultivar profile table and list the cultivars ordered by their mean colour intensity.",
     "CREATE TEMP TABLE profile AS\nSELECT cultivar, AVG(alcohol) AS alcohol, AVG(color_intensity) AS colour,\n"
     "       AVG(hue) AS hue, AVG(od280_od315) AS od_ratio FROM wine GROUP BY cultivar;\n"
     "SELECT cultivar, ROUND(colour, 2) AS colour, ROUND(hue, 3) AS hue, ROUND(od_ratio, 2) AS od_ratio\n"
     "FROM profile ORDER BY colour DESC;"),
    ("diabetes", "What is the mean disease progression by sex?",
     "SELECT sex, COUNT(*) AS patients, ROUND(AVG(progression), 1) AS mean_progression FROM diabetes GROUP BY sex;"),
    ("diabetes", "How does the mean progression change across BMI bands of 5 units?",
     "SELECT CAST(bmi / 5 AS INTEGER) * 5 AS bmi_band, COUNT(*) AS patients, ROUND(AVG(progression), 1) AS progression\n"
     "FROM diabetes GROUP BY bmi_band ORDER BY bmi_band;"),
    ("diabetes", "List the ten patients with the highest progression and their age, BMI and blood pressure.",
     "SELECT id, age, bmi, bp, progression FROM diabetes ORDER BY progression DESC, id LIMIT 10;"),
    ("diabetes", "Split the patients at the median age and compare BMI, blood pressure and progression.",
     "CREATE TEMP VIEW ranked AS SELECT *, NTILE(2) OVER (ORDER BY age, id) AS half FROM diabetes;\n"
     "SELECT half, MIN(age) AS youngest, MAX(age) AS oldest, ROUND(AVG(bmi), 2) AS bmi,\n"
     "       ROUND(AVG(bp), 1) AS bp, ROUND(AVG(progression), 1) AS progression\nFROM ranked GROUP BY half;"),
    ("diabetes", "Compute the correlation between BMI and progression.",
     "CREATE TEMP TABLE m AS SELECT AVG(bmi) AS mb, AVG(progression) AS mp FROM diabetes;\n"
     "SELECT ROUND(SUM((bmi - mb) * (progression - mp)) /\n"
     "       SQRT(SUM((bmi - mb) * (bmi - mb)) * SUM((progression - mp) * (progression - mp))), 4) AS correlation\n"
     "FROM diabetes, m;"),
    ("diabetes", "How many patients have high blood pressure (bp over 100) per sex, and what is their mean progression?",
     "SELECT sex, COUNT(*) AS patients, ROUND(AVG(progression), 1) AS progression FROM diabetes\n"
     "WHERE bp > 100 GROUP BY sex;"),
    ("diabetes", "Bucket the patients into quartiles of s5 and report the mean progression per quartile.",
     "SELECT quartile, COUNT(*) AS patients, ROUND(MIN(s5), 4) AS low, ROUND(MAX(s5), 4) AS high,\n"
     "       ROUND(AVG(progression), 1) AS progression\n"
     "FROM (SELECT s5, progression, NTILE(4) OVER (ORDER BY s5, id) AS quartile FROM diabetes)\n"
     "GROUP BY quartile ORDER BY quartile;"),
    ("diabetes", "Which decade of age has the highest mean progression?",
     "SELECT CAST(age / 10 AS INTEGER) * 10 AS decade, COUNT(*) AS patients, ROUND(AVG(progression), 1) AS progression\n"
     "FROM diabetes GROUP BY decade ORDER BY progression DESC;"),
    ("diabetes", "Mark the patients whose progression is above the mean of their sex and count them per sex.",
     "CREATE TEMP TABLE sex_mean AS SELECT sex, AVG(progression) AS mean FROM diabetes GROUP BY sex;\n"
     "CREATE TEMP VIEW flagged AS\nSELECT d.id, d.sex, d.progression > s.mean AS above FROM diabetes AS d JOIN sex_mean AS s USING (sex);\n"
     "SELECT sex, SUM(above) AS above_mean, COUNT(*) AS patients FROM flagged GROUP BY sex;"),
    ("diabetes", "What are the mean serum measurements s1 to s6 of the patients in the top and bottom 10% of progression?",
     "CREATE TEMP VIEW deciles AS SELECT *, NTILE(10) OVER (ORDER BY progression, id) AS decile FROM diabetes;\n"
     "SELECT decile, ROUND(AVG(s1), 1) AS s1, ROUND(AVG(s2), 1) AS s2, ROUND(AVG(s3), 1) AS s3,\n"
     "       ROUND(AVG(s4), 2) AS s4, ROUND(AVG(s5), 3) AS s5, ROUND(AVG(s6), 1) AS s6\n"
     "FROM deciles WHERE decile IN (1, 10) GROUP BY decile;"),
    ("breast_cancer", "How many tumours are malignant and how many benign, with their mean radius?",
     "SELECT diagnosis, COUNT(*) AS tumours, ROUND(AVG(mean_radius), 2) AS mean_radius\n"
     "FROM breast_cancer GROUP BY diagnosis;"),
    ("breast_cancer", "What share of tumours is malignant per band of 2.5 in mean radius?",
     "SELECT CAST(mean_radius / 2.5 AS INTEGER) * 2.5 AS radius_band, COUNT(*) AS tumours,\n"
     "       ROUND(AVG(diagnosis = 'malignant') * 100, 1) AS percent_malignant\n"
     "FROM breast_cancer GROUP BY radius_band ORDER BY radius_band;"),
    ("breast_cancer", "List the benign tumours whose worst area is larger than the smallest malignant worst area, largest first.",
     "SELECT id, worst_area, mean_radius FROM breast_cancer\nWHERE diagnosis = 'benign'\n"
     "  AND worst_area > (SELECT MIN(worst_area) FROM breast_cancer WHERE diagnosis = 'malignant')\n"
     "ORDER BY worst_area DESC LIMIT 15;"),
    ("breast_cancer", "How well does the rule 'worst radius above 16.8 means malignant' do? Give its confusion matrix and accuracy.",
     "CREATE TEMP VIEW predicted AS\nSELECT diagnosis, CASE WHEN worst_radius > 16.8 THEN 'malignant' ELSE 'benign' END AS guess\n"
     "FROM breast_cancer;\nSELECT diagnosis, guess, COUNT(*) AS tumours FROM predicted GROUP BY diagnosis, guess;\n"
     "SELECT ROUND(AVG(diagnosis = guess) * 100, 2) AS accuracy_percent FROM predicted;"),
    ("breast_cancer", "Compare the mean texture, smoothness and concavity of malignant and benign tumours.",
     "SELECT diagnosis, ROUND(AVG(mean_texture), 2) AS texture, ROUND(AVG(mean_smoothness), 4) AS smoothness,\n"
     "       ROUND(AVG(mean_concavity), 4) AS concavity\nFROM breast_cancer GROUP BY diagnosis;"),
    ("breast_cancer", "Which tumours have a perimeter more than 10% off the circle perimeter of their mean radius?",
     "SELECT id, diagnosis, mean_radius, mean_perimeter, ROUND(2 * 3.14159265 * mean_radius, 2) AS circle\n"
     "FROM breast_cancer WHERE ABS(mean_perimeter - 2 * 3.14159265 * mean_radius) > 0.1 * mean_perimeter\n"
     "ORDER BY id;"),
    ("breast_cancer", "Rank the tumours by mean area within each diagnosis and show the median tumour of each.",
     "CREATE TEMP VIEW ranked AS\nSELECT id, diagnosis, mean_area,\n"
     "       ROW_NUMBER() OVER (PARTITION BY diagnosis ORDER BY mean_area, id) AS r,\n"
     "       COUNT(*) OVER (PARTITION BY diagnosis) AS n\nFROM breast_cancer;\n"
     "SELECT diagnosis, id, mean_area FROM ranked WHERE r = (n + 1) / 2 ORDER BY diagnosis;"),
    ("breast_cancer", "Split the tumours into terciles of mean texture and show the malignant share of each.",
     "CREATE TEMP TABLE terciles AS\n"
     "SELECT id, diagnosis, mean_texture, NTILE(3) OVER (ORDER BY mean_texture, id) AS tercile FROM breast_cancer;\n"
     "SELECT tercile, ROUND(MIN(mean_texture), 2) AS low, ROUND(MAX(mean_texture), 2) AS high,\n"
     "       ROUND(AVG(diagnosis = 'malignant') * 100, 1) AS percent_malignant\n"
     "FROM terciles GROUP BY tercile ORDER BY tercile;"),
)  # fmt: skip
